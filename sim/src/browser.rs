//! A small browser: keeps cookies, follows redirects one at a time, reads
//! the HTML forms it is shown and submits them. It walks the connect flow
//! the way a user's browser would, so tests (and the simulator) exercise
//! the real pages rather than calling handlers around them.

use std::collections::HashMap;
use std::sync::Mutex;

pub struct Browser {
    client: reqwest::Client,
    cookies: Mutex<HashMap<String, String>>,
}

#[derive(Debug, Clone)]
pub struct Page {
    pub url: String,
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
}

/// An HTML form as the page shows it.
#[derive(Debug, Clone, Default)]
pub struct Form {
    pub action: String,
    pub method: String,
    pub fields: Vec<(String, String)>,
    /// `(name, value, label)` of each submit button.
    pub buttons: Vec<(String, String, String)>,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    pub fn new() -> Self {
        let client = syncaroo_shared::tls::http_client_builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .expect("http client");
        Self {
            client,
            cookies: Mutex::new(HashMap::new()),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn finish(&self, url: &str, resp: reqwest::Response) -> Result<Page, String> {
        for sc in resp.headers().get_all("set-cookie") {
            if let Some((kv, _)) = sc
                .to_str()
                .unwrap_or("")
                .split_once(';')
                .or(Some((sc.to_str().unwrap_or(""), "")))
            {
                if let Some((k, v)) = kv.split_once('=') {
                    self.cookies
                        .lock()
                        .unwrap()
                        .insert(k.trim().into(), v.trim().into());
                }
            }
        }
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(|l| resolve(url, l));
        let body = resp.text().await.map_err(|e| e.to_string())?;
        Ok(Page {
            url: url.to_string(),
            status,
            location,
            body,
        })
    }

    pub async fn get(&self, url: &str) -> Result<Page, String> {
        let resp = self
            .client
            .get(url)
            .header("cookie", self.cookie_header())
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        self.finish(url, resp).await
    }

    pub async fn post_form(&self, url: &str, fields: &[(String, String)]) -> Result<Page, String> {
        let mut ser = form_urlencoded::Serializer::new(String::new());
        for (k, v) in fields {
            ser.append_pair(k, v);
        }
        let resp = self
            .client
            .post(url)
            .header("cookie", self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(ser.finish())
            .send()
            .await
            .map_err(|e| format!("POST {url}: {e}"))?;
        self.finish(url, resp).await
    }

    /// Walks from `start` through login and consent until a redirect to a
    /// URL starting with `redirect_prefix`, which it returns. `decision` is
    /// the value of the consent button to press (`authorize` or `deny`).
    pub async fn connect(
        &self,
        start: &str,
        redirect_prefix: &str,
        username: &str,
        password: &str,
        decision: &str,
    ) -> Result<String, String> {
        let mut page = self.get(start).await?;
        for _ in 0..12 {
            if let Some(loc) = page.location.clone() {
                if loc.starts_with(redirect_prefix) {
                    return Ok(loc);
                }
                page = self.get(&loc).await?;
                continue;
            }
            if page.status != 200 {
                return Err(format!(
                    "{} answered {}: {}",
                    page.url,
                    page.status,
                    visible_text(&page.body)
                ));
            }
            let form = parse_form(&page.body).ok_or_else(|| {
                format!("{} shows no form: {}", page.url, visible_text(&page.body))
            })?;
            let action = resolve(&page.url, &form.action);
            let mut fields = form.fields.clone();
            if form.fields.iter().any(|(k, _)| k == "password") {
                for (k, v) in fields.iter_mut() {
                    match k.as_str() {
                        "username" => *v = username.into(),
                        "password" => *v = password.into(),
                        _ => {}
                    }
                }
            } else {
                let (name, value, _) = form
                    .buttons
                    .iter()
                    .find(|(_, v, _)| v == decision)
                    .ok_or_else(|| format!("no {decision} button on {}", page.url))?;
                fields.push((name.clone(), value.clone()));
            }
            page = self.post_form(&action, &fields).await?;
        }
        Err("too many steps without reaching the redirect URI".into())
    }
}

/// Resolves `href` against `base` (absolute, root-relative or empty).
pub fn resolve(base: &str, href: &str) -> String {
    if href.is_empty() {
        return base.to_string();
    }
    if href.contains("://") {
        return href.to_string();
    }
    let origin_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let origin = match base[origin_end..].find('/') {
        Some(p) => &base[..origin_end + p],
        None => base,
    };
    if href.starts_with('/') {
        format!("{origin}{href}")
    } else {
        let dir = base.rsplit_once('/').map(|(d, _)| d).unwrap_or(base);
        format!("{dir}/{href}")
    }
}

pub fn html_unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';').filter(|&e| e <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let ent = &rest[1..end];
        let ch = match ent {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ if ent.starts_with("#x") || ent.starts_with("#X") => {
                u32::from_str_radix(&ent[2..], 16)
                    .ok()
                    .and_then(char::from_u32)
            }
            _ if ent.starts_with('#') => ent[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let pat = format!("{name}=\"");
    let mut search = tag;
    loop {
        let i = search.find(&pat)?;
        // Make sure we matched a whole attribute name.
        let before = search[..i].chars().last();
        if before.is_none_or(|c| c.is_whitespace()) {
            let rest = &search[i + pat.len()..];
            let end = rest.find('"')?;
            return Some(html_unescape(&rest[..end]));
        }
        search = &search[i + pat.len()..];
    }
}

/// The first form of a page, with its inputs and submit buttons.
pub fn parse_form(html: &str) -> Option<Form> {
    let start = html.find("<form")?;
    let end = html[start..].find("</form>").map(|e| start + e)?;
    let body = &html[start..end];
    let open_end = body.find('>')?;
    let open = &body[..open_end];
    let mut form = Form {
        action: attr(open, "action").unwrap_or_default(),
        method: attr(open, "method").unwrap_or_else(|| "get".into()),
        ..Default::default()
    };
    let mut rest = &body[open_end..];
    while let Some(i) = rest.find('<') {
        rest = &rest[i..];
        let tag_end = rest.find('>').unwrap_or(rest.len());
        let tag = &rest[..tag_end];
        if tag.starts_with("<input") {
            if let Some(name) = attr(tag, "name") {
                form.fields
                    .push((name, attr(tag, "value").unwrap_or_default()));
            }
        } else if tag.starts_with("<button") {
            let after = &rest[tag_end.min(rest.len())..];
            let label = after
                .strip_prefix('>')
                .and_then(|a| a.find("</button>").map(|e| a[..e].trim().to_string()))
                .unwrap_or_default();
            if let (Some(n), Some(v)) = (attr(tag, "name"), attr(tag, "value")) {
                form.buttons.push((n, v, html_unescape(&label)));
            }
        }
        rest = &rest[tag_end.min(rest.len())..];
        if rest.is_empty() {
            break;
        }
        rest = &rest[1..];
    }
    Some(form)
}

/// The text of a page without its tags, for error messages.
pub fn visible_text(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    let mut in_style = false;
    let lower = html.to_ascii_lowercase();
    for (i, c) in html.char_indices() {
        if c == '<' {
            in_tag = true;
            if lower[i..].starts_with("<style") {
                in_style = true;
            } else if lower[i..].starts_with("</style") {
                in_style = false;
            }
        } else if c == '>' {
            in_tag = false;
            out.push(' ');
        } else if !in_tag && !in_style {
            out.push(c);
        }
    }
    html_unescape(&out.split_whitespace().collect::<Vec<_>>().join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_consent_form() {
        let html = r#"<form method="post" action=""><input type="hidden" name="state" value="a&amp;b&#34;c">
<button type="submit" class="primary" name="decision" value="authorize">Authorize</button>
<button type="submit" name="decision" value="deny">Deny</button></form>"#;
        let f = parse_form(html).unwrap();
        assert_eq!(f.fields, vec![("state".to_string(), "a&b\"c".to_string())]);
        assert_eq!(f.buttons.len(), 2);
        assert_eq!(f.buttons[1].2, "Deny");
    }

    #[test]
    fn resolves_urls() {
        assert_eq!(resolve("http://h:1/a/b?x", "/login"), "http://h:1/login");
        assert_eq!(resolve("http://h:1/a/b", ""), "http://h:1/a/b");
        assert_eq!(resolve("http://h:1/a/b", "https://x/y"), "https://x/y");
    }
}
