//! The agent protocol's codec: prost's encoding with small per-stream buffers.
//!
//! Every session holds one encode and one decode buffer for as long as the agent is connected.
//! tonic's default gives each 8 KiB up front, about 16 KiB of the server's memory per connected
//! agent before a byte moves; the messages of an idle session (heartbeats, acknowledgements)
//! are a few hundred bytes, and a buffer grows when a bigger one comes (a task's files, a
//! pipeline batch), so starting small costs nothing but a reallocation then
//! (docs/performance.md).

use tonic::codec::{BufferSettings, Codec};
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

/// The initial size of a stream's encode and decode buffers.
const BUFFER_SIZE: usize = 1024;
/// How much an encoder buffers before it yields (tonic's default).
const YIELD_THRESHOLD: usize = 32 * 1024;

/// [`ProstCodec`] with [`BUFFER_SIZE`] buffers; the generated code names it
/// (`codec_path` in `build.rs`).
#[derive(Debug, Clone)]
pub struct LeanCodec<T, U>(std::marker::PhantomData<(T, U)>);

impl<T, U> Default for LeanCodec<T, U> {
    fn default() -> Self {
        LeanCodec(std::marker::PhantomData)
    }
}

fn buffers() -> BufferSettings {
    BufferSettings::new(BUFFER_SIZE, YIELD_THRESHOLD)
}

impl<T, U> Codec for LeanCodec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = ProstDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::raw_encoder(buffers())
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstCodec::<T, U>::raw_decoder(buffers())
    }
}
