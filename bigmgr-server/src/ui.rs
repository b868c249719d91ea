//! The web console at `/`: the files `build.rs` built from `bigmgr-ui/` and embedded, served
//! from memory (no file system path is ever opened, so no request can reach outside them).
//!
//! - `/assets/…` (names carry a content hash): cached for a year, `immutable`.
//! - Any other path that is not a built file (and not under `/api/`) is a route of the
//!   single-page app: it gets `index.html` (history-mode fallback), `no-cache`, so a new
//!   build is picked up on the next load.
//! - Text files are sent gzipped (precompressed at build time) to browsers that accept it.
//! - Every answer carries `X-Bigmgr-Ui-Sources`: the hash of the sources the console was built
//!   from ([`crate::ui_sources::hash`]).
//! - A server built without the console answers `/` with a page that says how to build it.

use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::sync::LazyLock;

mod built {
    include!(concat!(env!("OUT_DIR"), "/ui_assets.rs"));
}

/// The header naming the hash of the sources the served console was built from.
pub const SOURCES_HEADER: &str = "x-bigmgr-ui-sources";

/// `Cache-Control` of the hashed assets under `/assets/`.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

static FILES: LazyLock<HashMap<&'static str, &'static [u8]>> =
    LazyLock::new(|| built::ASSETS.iter().copied().collect());

/// The hash of the sources the embedded console was built from (empty if none is embedded).
pub fn sources_hash() -> &'static str {
    built::SOURCES_HASH
}

/// Whether this binary embeds the console.
pub fn is_built() -> bool {
    built::NOT_BUILT.is_none() && FILES.contains_key("index.html")
}

/// Whether the console answers `method` on `path` (GET and HEAD of anything outside the API).
pub fn serves(method: &Method, path: &str) -> bool {
    (method == Method::GET || method == Method::HEAD)
        && path != "/api"
        && !path.starts_with("/api/")
        && path != "/openapi.json"
}

/// The console's answer for `path` (gzipped if the browser `accepts` the request's
/// `Accept-Encoding`): a built file, `index.html` for an app route, or the not-built page.
pub fn serve(path: &str, accepts: Option<&HeaderValue>) -> Response {
    let gzip = accepts
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    if !is_built() {
        return not_built(built::NOT_BUILT.unwrap_or("the build wrote no index.html"));
    }
    let rel = path.trim_start_matches('/');
    if let Some(bytes) = FILES.get(rel).filter(|_| !rel.is_empty()) {
        let cache = if rel.starts_with("assets/") {
            IMMUTABLE
        } else {
            "no-cache"
        };
        return file(rel, bytes, cache, gzip);
    }
    if rel.starts_with("assets/") {
        // A hashed file of another build: the app's route fallback would hand the browser
        // HTML where it expects a script.
        let mut res = (StatusCode::NOT_FOUND, "no such asset in this build").into_response();
        stamp(&mut res);
        return res;
    }
    file("index.html", FILES["index.html"], "no-cache", gzip)
}

/// The answer of built file `rel` (`bytes`), its precompressed twin if `gzip` is accepted.
fn file(rel: &str, bytes: &'static [u8], cache: &'static str, gzip: bool) -> Response {
    let zipped = FILES.get(format!("{rel}.gz").as_str()).filter(|_| gzip);
    let mut res = (
        [
            (header::CONTENT_TYPE, content_type(rel)),
            (header::CACHE_CONTROL, cache),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::VARY, "accept-encoding"),
        ],
        zipped.copied().unwrap_or(bytes),
    )
        .into_response();
    if zipped.is_some() {
        res.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    stamp(&mut res);
    res
}

fn stamp(res: &mut Response) {
    if let Ok(v) = HeaderValue::from_str(sources_hash()) {
        res.headers_mut().insert(SOURCES_HEADER, v);
    }
}

/// The content type of a built file, by its extension.
fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        Some("woff") => "font/woff",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// The page of a server without the console: what happened and how to build it.
fn not_built(why: &str) -> Response {
    let page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>bigmgr: the web console was not built</title></head><body>\
         <h1>The web console was not built into this bigmgr</h1>\
         <p>Why: <pre>{}</pre></p>\
         <p>It is built from <code>bigmgr-ui/</code> when <code>bigmgr</code> is built, with \
         Node.js 20 and npm on the <code>PATH</code> (<code>npm ci</code>, then \
         <code>npm run build</code>). Install them and build again: \
         <code>cargo build -p bigmgr-server</code>.</p>\
         <p>The REST API answers under <a href=\"/api/v1/health\">/api/v1</a>; its reference \
         is at <a href=\"/api/docs\">/api/docs</a>.</p></body></html>",
        escape_html(why)
    );
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        page,
    )
        .into_response()
}

/// `text` with HTML's special characters escaped.
fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_is_never_the_consoles() {
        for path in ["/api", "/api/v1/nope", "/api/docs", "/openapi.json"] {
            assert!(!serves(&Method::GET, path), "{path}");
        }
        for path in ["/", "/login", "/clusters/demo/hosts", "/assets/x.js"] {
            assert!(serves(&Method::GET, path), "{path}");
            assert!(serves(&Method::HEAD, path), "{path}");
            assert!(!serves(&Method::POST, path), "{path}");
        }
    }

    #[test]
    fn the_not_built_page_escapes_what_it_quotes() {
        let e = escape_html("<script>alert('x')</script> & \"y\"");
        assert_eq!(
            e,
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;y&quot;"
        );
    }

    #[test]
    fn content_types_by_extension() {
        assert_eq!(
            content_type("assets/index-1a2b.js"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(
            content_type("assets/index-1a2b.css"),
            "text/css; charset=utf-8"
        );
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("favicon.svg"), "image/svg+xml");
        assert_eq!(content_type("LICENSE"), "application/octet-stream");
    }
}
