//! The web page, embedded in the binary (`build.rs` includes the committed
//! build in `server/web/`): the shell `index.html` at `/` (the live
//! sessions), `/watch/{id}` (a spectate view) and `/play` (a playable
//! game), and its content-hashed scripts and styles under `/assets/`.
//!
//! A hashed name never changes its bytes, so those are cached for a year
//! (`immutable`); the shell is `no-cache`, so a new server's page is seen
//! at once. Each file is sent precompressed as the client accepts:
//! Brotli, then gzip, then as is.

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::ApiError;

/// One embedded file and its precompressed forms.
struct WebFile {
    /// Path under `/`, such as `index.html` or `assets/app-5DXK2Q7A.js`.
    path: &'static str,
    identity: &'static [u8],
    gzip: Option<&'static [u8]>,
    brotli: Option<&'static [u8]>,
}

include!(concat!(env!("OUT_DIR"), "/web_files.rs"));

/// Hashed assets are good for as long as caches keep anything.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// The shell names the current assets: always revalidated.
const NO_CACHE: &str = "no-cache";
const SHELL: &str = "index.html";

/// `/`, `/watch/{id}`, `/play`: the page decides what to show from its path.
pub(super) async fn shell(headers: HeaderMap) -> Response {
    serve(SHELL, &headers, NO_CACHE)
}

/// `/assets/{file}`.
pub(super) async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    serve(&format!("assets/{file}"), &headers, IMMUTABLE)
}

fn serve(path: &str, headers: &HeaderMap, cache: &'static str) -> Response {
    let Some(file) = FILES.iter().find(|file| file.path == path) else {
        return if path == SHELL {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "this server was built without its web page (server/web/ is empty)",
            )
            .into_response()
        } else {
            ApiError::new(StatusCode::NOT_FOUND, "no such file").into_response()
        };
    };
    let accepted = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let (body, encoding) = match (file.brotli, file.gzip) {
        (Some(brotli), _) if accepts(accepted, "br") => (brotli, Some("br")),
        (_, Some(gzip)) if accepts(accepted, "gzip") => (gzip, Some("gzip")),
        _ => (file.identity, None),
    };
    let mut response = body.into_response();
    let out = response.headers_mut();
    out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(path)),
    );
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    out.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    out.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Some(encoding) = encoding {
        out.insert(header::CONTENT_ENCODING, HeaderValue::from_static(encoding));
    }
    response
}

/// Whether an `Accept-Encoding` value allows `coding`: named (or `*`)
/// without `q=0`.
fn accepts(accept_encoding: &str, coding: &str) -> bool {
    accept_encoding.split(',').any(|item| {
        let mut parts = item.split(';').map(str::trim);
        let name = parts.next().unwrap_or("");
        let refused = parts.any(|parameter| {
            parameter
                .strip_prefix("q=")
                .and_then(|q| q.parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        (name.eq_ignore_ascii_case(coding) || name == "*") && !refused
    })
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("json" | "map") => "application/json",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::accepts;

    #[test]
    fn accept_encoding_is_read_with_its_weights() {
        assert!(accepts("gzip, deflate, br, zstd", "br"));
        assert!(accepts("gzip;q=1.0, identity; q=0.5", "gzip"));
        assert!(!accepts("gzip;q=1.0, identity; q=0.5", "br"));
        assert!(!accepts("br;q=0, gzip", "br"));
        assert!(accepts("*", "br"));
        assert!(!accepts("", "gzip"));
    }
}
