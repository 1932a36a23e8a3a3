//! Response builders with their security headers: JSON, HTML pages,
//! redirects. Nothing here knows the error type; the error type uses these.

use askama::Template;
use bytes::Bytes;
use http::{HeaderValue, StatusCode};

pub type Response = http::Response<Bytes>;

/// Sets a header. A value that cannot be one (a control character, say)
/// is the caller's error to handle, never dropped silently: a redirect
/// without its `Location` would go out as a bare 302.
pub fn set_header(
    resp: &mut Response,
    name: &'static str,
    value: &str,
) -> Result<(), http::header::InvalidHeaderValue> {
    resp.headers_mut()
        .insert(name, HeaderValue::from_str(value)?);
    Ok(())
}

fn base(status: StatusCode, content_type: &'static str, body: Bytes) -> Response {
    let mut r = http::Response::new(body);
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert("content-type", HeaderValue::from_static(content_type));
    h.insert("cache-control", HeaderValue::from_static("no-store"));
    h.insert("pragma", HeaderValue::from_static("no-cache"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    r
}

pub fn json_response(status: StatusCode, value: &impl serde::Serialize) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    json_bytes(status, body)
}

/// A JSON body already serialised.
pub fn json_bytes(status: StatusCode, body: Vec<u8>) -> Response {
    base(status, "application/json; charset=UTF-8", Bytes::from(body))
}

pub fn html_response(status: StatusCode, html: String) -> Response {
    let mut r = base(status, "text/html; charset=UTF-8", Bytes::from(html));
    let h = r.headers_mut();
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    r
}

/// 302 to `location`. Pages that carry codes in their URL send no referrer.
/// An address that cannot be a header value (a setting with a stray
/// newline) is a 500 page, logged: there is nowhere to send the browser.
pub fn redirect(location: &str) -> Response {
    let mut r = base(StatusCode::FOUND, "text/plain; charset=UTF-8", Bytes::new());
    match set_header(&mut r, "location", location) {
        Ok(()) => r,
        Err(_) => {
            tracing::error!("a redirect's address is not a valid Location header value (a control character in a setting?)");
            error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "This page cannot send you on: its address is misconfigured.",
            )
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: u16,
    reason: &'a str,
    message: &'a str,
}

pub fn error_page(status: StatusCode, message: &str) -> Response {
    let page = ErrorPage {
        status: status.as_u16(),
        reason: status.canonical_reason().unwrap_or("Error"),
        message,
    };
    let html = page
        .render()
        .unwrap_or_else(|_| format!("<h1>{}</h1>", status.as_u16()));
    html_response(status, html)
}

/// Appends query parameters to a URL that may already have a query.
pub fn append_query(url: &str, params: &[(&str, &str)]) -> String {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        ser.append_pair(k, v);
    }
    let q = ser.finish();
    let (head, frag) = match url.split_once('#') {
        Some((h, f)) => (h, Some(f)),
        None => (url, None),
    };
    let sep = if !head.contains('?') {
        "?"
    } else if head.ends_with('?') || head.ends_with('&') {
        ""
    } else {
        "&"
    };
    match frag {
        Some(f) => format!("{head}{sep}{q}#{f}"),
        None => format!("{head}{sep}{q}"),
    }
}
