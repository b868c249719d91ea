//! The server: the SQLite store, the gRPC transport, the [`Manager`] and one listener that
//! serves the REST API and the agents' gRPC side by side on the same port: over TLS (HTTP/1.1
//! and HTTP/2 by ALPN) with the server's own certificate or the operator's, or, with
//! `--insecure-http`, in plain HTTP/1.1 and h2c.

use crate::admin_token::{self, AdminToken, Origin};
use crate::config::{ServeConfig, TlsMode};
use crate::signal::Signals;
use crate::tls_listener::{Peer, TlsListener};
use crate::{Error, Result, api};
use axum::Router;
use bigmgr_core::Manager;
use bigmgr_core::grpc::{GrpcTransport, PeerAddr, PeerCertificate};
use bigmgr_core::stack::DirStackProvider;
use bigmgr_core::tls::{AgentCa, ServerIdentity};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long a shutdown waits for open connections (agents' streams, slow clients) to end
/// before it closes them.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// The environment variable that sets the admin token.
pub const ADMIN_TOKEN_ENV: &str = "BIGMGR_ADMIN_TOKEN";

/// A running server. Stop it with [`Server::shutdown`].
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    mgr: Manager,
    admin: AdminToken,
    stop: watch::Sender<bool>,
    task: JoinHandle<std::io::Result<()>>,
    grpc: Arc<GrpcTransport>,
    tls: Option<TlsInfo>,
}

/// What clients need to trust a TLS server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// The CA's fingerprint agents pin (`sha256:…`).
    pub ca_fingerprint: String,
    /// The CA certificate (PEM), when the server made it: clients' `--ca`.
    pub ca_path: Option<std::path::PathBuf>,
}

/// The whole HTTP application: the gRPC routes, the REST API, and [`api::fallback`] for the rest.
pub fn app(mgr: Manager, grpc: &Arc<GrpcTransport>) -> Router {
    grpc.routes()
        .into_axum_router()
        .fallback(api::fallback)
        .merge(api::router(mgr))
        .layer(axum::middleware::from_fn(peer_addr))
}

/// Hands the connection's peer address (which agents are logged by) and the client
/// certificate it presented (which identifies an agent's host) to the gRPC service.
async fn peer_addr(
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let tls = req
        .extensions()
        .get::<axum::extract::ConnectInfo<Peer>>()
        .map(|c| c.0.clone());
    let addr = req
        .extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
        .or(tls.as_ref().map(|p| p.addr));
    if let Some(addr) = addr {
        req.extensions_mut().insert(PeerAddr(addr));
    }
    if let Some(cert) = tls.and_then(|p| p.cert) {
        req.extensions_mut().insert(PeerCertificate(cert));
    }
    next.run(req).await
}

impl Server {
    /// Opens the store in `config.data` (creating the directory), finds the admin token
    /// (`admin_token_env` is `BIGMGR_ADMIN_TOKEN`'s value), starts the engine, binds
    /// `config.listen` and serves in the background.
    pub async fn start(config: &ServeConfig, admin_token_env: Option<String>) -> Result<Server> {
        std::fs::create_dir_all(&config.data).map_err(|e| Error::io(&config.data, e))?;
        let admin = admin_token::load_or_create(&config.data, admin_token_env)?;
        let store = config.store_url();
        let roots = config.stack_roots();
        tracing::info!(store = %bigmgr_core::database::redact_url(&store), stacks = ?roots, "opening");
        let identity = match &config.tls {
            TlsMode::Insecure => {
                tracing::warn!(
                    "serving plain HTTP (--insecure-http): join tokens, agent credentials, API tokens \
                     and secret config values cross the network readable by anyone on it"
                );
                None
            }
            TlsMode::Own { names } => Some(ServerIdentity::load_or_create(&config.data, names)?),
            TlsMode::Files { cert, key } => Some(ServerIdentity::from_files(cert, key)?),
        };
        // Agents' certificates are signed by the server's own CA, or by a CA kept for agents
        // beside an operator's certificate.
        let agent_ca = match &config.tls {
            TlsMode::Insecure => None,
            TlsMode::Own { .. } => Some(Arc::new(AgentCa::load_or_create(&config.data, true)?)),
            TlsMode::Files { .. } => Some(Arc::new(AgentCa::load_or_create(&config.data, false)?)),
        };
        let tls = identity.as_ref().map(|id| TlsInfo {
            ca_fingerprint: id.ca_fingerprint.clone(),
            ca_path: id.ca_path.clone(),
        });
        let mut builder = Manager::builder();
        if let Some(replica) = &config.replica {
            tracing::info!(url = %replica.url, lease_time = ?replica.lease_time, "a replica: the holder of the engine's lease runs the engine");
            builder = builder.replica(replica.clone());
        }
        let (mgr, grpc) = builder
            .store_url(&store)
            .alerts(config.alerts.clone())
            .stacks(DirStackProvider::new(roots))
            .config(bigmgr_core::EngineConfig {
                lost_grace: config.lost_grace,
                ..bigmgr_core::EngineConfig::default()
            })
            .ca_fingerprint(tls.as_ref().map(|t| t.ca_fingerprint.clone()))
            .agent_ca(agent_ca.clone())
            .agent_dir(&config.agent_dir)
            .build_grpc(config.grpc.clone())
            .await?;
        // The admin token is an API token of the built-in user `admin`.
        mgr.bootstrap_admin(&admin.token).await?;
        let app = app(mgr.clone(), &grpc);
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| Error::Listen {
                addr: config.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(Error::Serve)?;
        let (stop, mut stopped) = watch::channel(false);
        let shutdown = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        let task = match identity {
            None => tokio::spawn(async move {
                // Small gRPC frames (a RunTask, an Ack) must not wait for Nagle's algorithm and
                // the peer's delayed ACK: that alone costs ~40 ms per dispatch.
                let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
                    if let Err(e) = tcp.set_nodelay(true) {
                        tracing::debug!(error = %e, "cannot set TCP_NODELAY");
                    }
                });
                axum::serve(
                    listener,
                    app.into_make_service_with_connect_info::<SocketAddr>(),
                )
                .with_graceful_shutdown(shutdown)
                .await
            }),
            Some(id) => {
                let config = id.server_config(agent_ca.as_deref())?;
                let listener = TlsListener::new(listener, config).map_err(Error::Serve)?;
                tokio::spawn(async move {
                    axum::serve(listener, app.into_make_service_with_connect_info::<Peer>())
                        .with_graceful_shutdown(shutdown)
                        .await
                })
            }
        };
        tracing::info!(%addr, tls = tls.is_some(), heartbeat_interval = ?config.grpc.heartbeat_interval, "serving REST and gRPC");
        Ok(Server {
            addr,
            mgr,
            admin,
            stop,
            task,
            grpc,
            tls,
        })
    }

    /// The address it listens on (the real port when `--listen` asked for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://ADDR:PORT` (`http://` with `--insecure-http`), the base URL of the REST API
    /// and of the agents' gRPC.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// What clients need to trust it; `None` when it serves plain HTTP.
    pub fn tls(&self) -> Option<&TlsInfo> {
        self.tls.as_ref()
    }

    /// The facade the API serves.
    pub fn manager(&self) -> &Manager {
        &self.mgr
    }

    /// The admin token in force.
    pub fn admin_token(&self) -> &AdminToken {
        &self.admin
    }

    /// Prints what an operator needs on stdout: the admin token if it was generated just now
    /// (the only time it is shown), then `bigmgr listening on http://ADDR:PORT`.
    pub fn announce(&self) {
        if self.admin.origin == Origin::Generated {
            println!(
                "admin token (saved in {}; shown only this once): {}",
                self.admin.path.display(),
                self.admin.token
            );
        }
        println!("bigmgr listening on {}", self.url());
    }

    /// Stops accepting connections, lets open ones finish for up to [`DRAIN_TIMEOUT`], then
    /// stops the engine. Work in flight is in the store; the next start resumes it.
    pub async fn shutdown(self) -> Result<()> {
        let _ = self.stop.send(true);
        // Agents' sessions never end by themselves: end them, so the connections can close.
        self.grpc.close_sessions();
        let mut task = self.task;
        let served = match tokio::time::timeout(DRAIN_TIMEOUT, &mut task).await {
            Ok(Ok(result)) => result.map_err(Error::Serve),
            Ok(Err(e)) => Err(Error::Serve(std::io::Error::other(e))),
            Err(_) => {
                tracing::warn!("connections still open after {DRAIN_TIMEOUT:?}; closing them");
                task.abort();
                Ok(())
            }
        };
        self.mgr.shutdown().await;
        tracing::info!("stopped");
        served
    }
}

/// `bigmgr serve`: starts the server, announces it, and runs until SIGINT or SIGTERM.
pub async fn serve(config: ServeConfig) -> Result<()> {
    let mut signals = Signals::new()?;
    let server = Server::start(&config, admin_token_env()).await?;
    server.announce();
    let signal = signals.recv().await;
    tracing::info!(signal, "shutting down");
    server.shutdown().await
}

/// `BIGMGR_ADMIN_TOKEN`, if set and not empty.
pub fn admin_token_env() -> Option<String> {
    std::env::var(ADMIN_TOKEN_ENV)
        .ok()
        .filter(|t| !t.is_empty())
}
