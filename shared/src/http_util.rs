//! The HTTP surface every handler shares: the request type (neither
//! Lambda's nor hyper's) and strict parameter parsing. Response building is
//! in [`crate::http_response`] (re-exported here), which knows nothing of
//! [`Error`], so the error type can build its own answers without a cycle.

use crate::error::Error;
use bytes::Bytes;

pub use crate::http_response::{
    append_query, error_page, html_response, json_response, redirect, set_header, Response,
};

pub type Request = http::Request<Bytes>;

/// Larger bodies than this are refused before parsing: every form and JSON
/// body of the protocol is a few hundred bytes.
pub const MAX_FORM_BODY: usize = 16 * 1024;

/// One `application/x-www-form-urlencoded` name or value, decoded
/// strictly: `+` is a space, and percent-encoded bytes that are not UTF-8
/// are refused (a lossy decode would turn them into U+FFFD, and refusing
/// U+FFFD would refuse a real one too).
pub fn form_decode(s: &str) -> Result<String, Error> {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| Error::InvalidRequest("parameters are not valid percent-encoded UTF-8".into()))
}

/// Parsed `application/x-www-form-urlencoded` pairs (query or body), kept in
/// order with duplicates so they can be refused (RFC 6749 section 3.1).
#[derive(Debug, Default, Clone)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(raw: &[u8]) -> Result<Self, Error> {
        let raw = std::str::from_utf8(raw)
            .map_err(|_| Error::InvalidRequest("parameters are not valid UTF-8".into()))?;
        let decode = form_decode;
        let mut pairs = Vec::new();
        for part in raw.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            let k = decode(k)?;
            if !k.is_empty() {
                pairs.push((k, decode(v)?));
            }
        }
        Ok(Self(pairs))
    }

    pub fn from_query(req: &Request) -> Result<Self, Error> {
        Self::parse(req.uri().query().unwrap_or("").as_bytes())
    }

    /// The value of a parameter that may be spelled several ways (the
    /// guide's camelCase and RFC 6749's snake_case). More than one
    /// occurrence, under any spelling, is an error.
    pub fn one_of(&self, names: &[&str]) -> Result<Option<&str>, Error> {
        let mut found = self.0.iter().filter(|(k, _)| names.contains(&k.as_str()));
        let first = found.next();
        if found.next().is_some() {
            return Err(Error::InvalidRequest(format!(
                "parameter {} given more than once",
                names[0]
            )));
        }
        Ok(first.map(|(_, v)| v.as_str()))
    }

    /// Refuses any parameter not in `allowed`: a misspelt one must not be
    /// read as absent (`?userid=` would list every user's connections).
    pub fn only(&self, allowed: &[&str]) -> Result<(), Error> {
        match self.0.iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
            None => Ok(()),
            Some((k, _)) if allowed.is_empty() => Err(Error::InvalidRequest(format!(
                "unknown query parameter {k:?}: this route takes none"
            ))),
            Some((k, _)) => Err(Error::InvalidRequest(format!(
                "unknown query parameter {k:?}: this route takes {}",
                allowed.join(", ")
            ))),
        }
    }

    /// Like [`Params::one_of`] but also tells which spelling was used.
    pub fn one_of_named(&self, names: &[&str]) -> Result<Option<(&str, &str)>, Error> {
        self.one_of(names)?;
        Ok(self
            .0
            .iter()
            .find(|(k, _)| names.contains(&k.as_str()))
            .map(|(k, v)| (k.as_str(), v.as_str())))
    }

    pub fn required(&self, names: &[&str]) -> Result<&str, Error> {
        match self.one_of(names)? {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(Error::InvalidRequest(format!(
                "missing parameter {}",
                names[0]
            ))),
        }
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }
}

/// Reads a form body: right content type, bounded size, valid encoding.
pub fn form_body(req: &Request) -> Result<Params, Error> {
    let ct = header(req, "content-type").unwrap_or("");
    let mime = ct.split(';').next().unwrap_or("").trim();
    if !mime.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(Error::UnsupportedMediaType(
            "expected Content-Type: application/x-www-form-urlencoded".into(),
        ));
    }
    if req.body().len() > MAX_FORM_BODY {
        return Err(Error::PayloadTooLarge(MAX_FORM_BODY));
    }
    Params::parse(req.body())
}

pub fn header<'a, B>(req: &'a http::Request<B>, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The value of one cookie, if the `Cookie` header(s) carry it once.
pub fn cookie<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers()
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;

    fn req_with(headers: &[(&str, &str)], body: &'static str) -> Request {
        let mut b = http::Request::builder().method("POST").uri("/x");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(Bytes::from_static(body.as_bytes())).unwrap()
    }

    #[test]
    fn params_refuse_duplicates_across_spellings() {
        let p = Params::parse(b"clientId=a&client_id=a").unwrap();
        assert!(p.one_of(&["clientId", "client_id"]).is_err());
        let p = Params::parse(b"clientId=a&x=1").unwrap();
        assert_eq!(p.one_of(&["clientId", "client_id"]).unwrap(), Some("a"));
        assert_eq!(
            p.one_of_named(&["client_id", "clientId"]).unwrap(),
            Some(("clientId", "a"))
        );
        assert!(p.required(&["code"]).is_err());
    }

    #[test]
    fn params_refuse_bad_encoding() {
        assert!(Params::parse(b"a=%ff%fe").is_err());
        assert!(Params::parse(&[b'a', b'=', 0xff]).is_err());
        assert_eq!(
            Params::parse(b"a=b%20c+d")
                .unwrap()
                .required(&["a"])
                .unwrap(),
            "b c d"
        );
    }

    #[test]
    fn form_body_checks_type_and_size() {
        let r = req_with(&[("content-type", "application/json")], "{}");
        assert!(matches!(form_body(&r), Err(Error::UnsupportedMediaType(_))));
        let r = req_with(
            &[(
                "content-type",
                "application/x-www-form-urlencoded; charset=UTF-8",
            )],
            "a=1",
        );
        assert_eq!(form_body(&r).unwrap().required(&["a"]).unwrap(), "1");
        let big: &'static str = Box::leak("a=".repeat(MAX_FORM_BODY).into_boxed_str());
        let r = req_with(
            &[("content-type", "application/x-www-form-urlencoded")],
            big,
        );
        assert!(matches!(form_body(&r), Err(Error::PayloadTooLarge(_))));
    }

    #[test]
    fn cookies() {
        let r = req_with(&[("cookie", "a=1; sess=abc.def")], "");
        assert_eq!(cookie(&r, "sess"), Some("abc.def"));
        assert_eq!(cookie(&r, "nope"), None);
    }

    #[test]
    fn append_query_handles_existing_query_and_fragment() {
        assert_eq!(
            append_query("https://a/b", &[("x", "1 2")]),
            "https://a/b?x=1+2"
        );
        assert_eq!(
            append_query("https://a/b?y=2", &[("x", "1")]),
            "https://a/b?y=2&x=1"
        );
        assert_eq!(
            append_query("https://a/b#f", &[("x", "1")]),
            "https://a/b?x=1#f"
        );
    }

    #[test]
    fn error_page_escapes_html() {
        let r = error_page(StatusCode::BAD_REQUEST, "<script>alert(1)</script>");
        let body = std::str::from_utf8(r.body()).unwrap();
        assert!(!body.contains("<script>"));
        assert!(body.contains("&lt;script&gt;") || body.contains("&#60;script&#62;"));
    }
}
