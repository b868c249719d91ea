//! Free loopback addresses for servers under test.

use std::net::{SocketAddr, TcpListener};

/// A free loopback address: binds port 0, notes the port, lets it go.
pub fn free_addr() -> SocketAddr {
    free_addrs::<1>()[0]
}

/// `N` distinct free loopback addresses (all held until every one is chosen).
pub fn free_addrs<const N: usize>() -> [SocketAddr; N] {
    let held: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0"))
        .collect();
    std::array::from_fn(|i| held[i].local_addr().expect("local addr"))
}

/// A free loopback port.
pub fn free_port() -> u16 {
    free_addr().port()
}
