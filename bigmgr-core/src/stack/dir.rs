//! The directory stack provider: `<root>/<stack>/<version>/<service>/service.toml`.

/// Reads stacks from directories (to be written).
#[derive(Debug)]
pub struct DirStackProvider;
