//! A small browser: keeps cookies (reqwest's cookie store, by domain and
//! path as a browser does), follows redirects one at a time, reads the HTML
//! forms it is shown (`scraper`, an HTML5 parser) and submits them. It
//! walks the connect flow the way a user's browser would, so tests (and the
//! simulator) exercise the real pages rather than calling handlers around
//! them.

use scraper::{ElementRef, Html, Selector};
use std::sync::Arc;

pub struct Browser {
    client: reqwest::Client,
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
    /// What the form submits besides a button: named inputs (checkboxes
    /// and radios only when checked), textareas, selects.
    pub fields: Vec<(String, String)>,
    /// `(name, value, label)` of each named submit button.
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
            .cookie_provider(Arc::new(reqwest::cookie::Jar::default()))
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .expect("http client");
        Self { client }
    }

    async fn finish(&self, url: &str, resp: reqwest::Response) -> Result<Page, String> {
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
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        self.finish(url, resp).await
    }

    pub async fn post_form(&self, url: &str, fields: &[(String, String)]) -> Result<Page, String> {
        let resp = self
            .client
            .post(url)
            .form(fields)
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

/// Resolves `href` against `base` as a browser does (RFC 3986 section 5:
/// absolute, root-relative, relative with `../`, query-only, empty).
pub fn resolve(base: &str, href: &str) -> String {
    match url::Url::parse(base).and_then(|b| b.join(href)) {
        Ok(u) => u.to_string(),
        Err(_) => href.to_string(),
    }
}

fn selector(css: &str) -> Selector {
    Selector::parse(css).expect("a valid selector")
}

/// The first form of a page, with what it submits and its submit buttons.
pub fn parse_form(html: &str) -> Option<Form> {
    let doc = Html::parse_document(html);
    let form = doc.select(&selector("form")).next()?;
    let el = form.value();
    let mut out = Form {
        action: el.attr("action").unwrap_or_default().to_string(),
        method: el.attr("method").unwrap_or("get").to_ascii_lowercase(),
        ..Default::default()
    };
    let controls = selector("input[name], button[name], textarea[name], select[name]");
    for control in form.select(&controls) {
        let e = control.value();
        let name = e.attr("name").unwrap_or_default().to_string();
        let value = e.attr("value").unwrap_or_default().to_string();
        let kind = e.attr("type").unwrap_or_default().to_ascii_lowercase();
        match (e.name(), kind.as_str()) {
            ("button", "" | "submit") | ("input", "submit") => {
                let label = match e.name() {
                    "button" => text_of(control),
                    _ => value.clone(),
                };
                out.buttons.push((name, value, label));
            }
            ("button", _) | ("input", "button" | "reset" | "image" | "file") => {}
            ("input", "checkbox" | "radio") if e.attr("checked").is_none() => {}
            ("textarea", _) => out.fields.push((name, control.text().collect())),
            ("select", _) => {
                let options: Vec<ElementRef> = control.select(&selector("option")).collect();
                let chosen = options
                    .iter()
                    .find(|o| o.value().attr("selected").is_some())
                    .or(options.first());
                if let Some(o) = chosen {
                    let v = o.value().attr("value").map(str::to_string);
                    out.fields.push((name, v.unwrap_or_else(|| text_of(*o))));
                }
            }
            _ => out.fields.push((name, value)),
        }
    }
    Some(out)
}

/// An element's text, whitespace collapsed.
fn text_of(el: ElementRef) -> String {
    el.text()
        .collect::<Vec<_>>()
        .join(" ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The text of a page a reader sees (no markup, styles or scripts), for
/// error messages.
pub fn visible_text(html: &str) -> String {
    let doc = Html::parse_document(html);
    let mut words = Vec::new();
    for node in doc.root_element().descendants() {
        let Some(text) = node.value().as_text() else {
            continue;
        };
        let hidden = node.ancestors().any(|a| {
            a.value()
                .as_element()
                .is_some_and(|e| matches!(e.name(), "style" | "script" | "title"))
        });
        if !hidden {
            words.extend(text.split_whitespace());
        }
    }
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_consent_form() {
        let html = r#"<form method="post" action=""><input type="hidden" name="state" value="a&amp;b&#34;c">
<input type="checkbox" name="remember" value="1"><input type="checkbox" name="terms" value="yes" checked>
<select name="scope"><option value="read">Read</option><option value="all" selected>All</option></select>
<textarea name="note">hi &lt;there&gt;</textarea>
<button type="submit" class="primary" name="decision" value="authorize">Authorize</button>
<button type="submit" name="decision" value="deny">Deny <b>access</b></button>
<button type="button" name="help" value="x">Help</button></form>
<form action="/other"><input name="no"></form>"#;
        let f = parse_form(html).unwrap();
        assert_eq!(f.method, "post");
        assert_eq!(
            f.fields,
            [
                ("state", "a&b\"c"),
                ("terms", "yes"),
                ("scope", "all"),
                ("note", "hi <there>")
            ]
            .map(|(a, b)| (a.to_string(), b.to_string()))
        );
        assert_eq!(f.buttons.len(), 2);
        assert_eq!(
            f.buttons[1],
            ("decision".into(), "deny".into(), "Deny access".into())
        );
    }

    #[test]
    fn resolves_urls_as_rfc_3986_does() {
        // RFC 3986 section 5.4.1's examples, against its base URI, as
        // browsers write them (WHATWG URL: `//g` gets the root path `/`).
        let base = "http://a/b/c/d;p?q";
        for (href, want) in [
            ("g", "http://a/b/c/g"),
            ("./g", "http://a/b/c/g"),
            ("/g", "http://a/g"),
            ("//g", "http://g/"),
            ("?y", "http://a/b/c/d;p?y"),
            ("g?y", "http://a/b/c/g?y"),
            ("#s", "http://a/b/c/d;p?q#s"),
            ("", "http://a/b/c/d;p?q"),
            (".", "http://a/b/c/"),
            ("..", "http://a/b/"),
            ("../g", "http://a/b/g"),
            ("../../g", "http://a/g"),
        ] {
            assert_eq!(resolve(base, href), want, "{href}");
        }
        assert_eq!(resolve("http://h:1/a/b", "https://x/y"), "https://x/y");
    }

    #[test]
    fn visible_text_skips_markup_styles_and_scripts() {
        let html = "<html><head><title>T</title><style>p{color:red}</style></head>\
            <body><h1>Could not connect</h1><p>Bad &amp; <em>wrong</em>.</p>\
            <script>var x = 1;</script></body></html>";
        assert_eq!(visible_text(html), "Could not connect Bad & wrong .");
    }
}
