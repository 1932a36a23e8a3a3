//! `authUri`: Syncaroo sends the user here with `connectionId`, `clientId`,
//! `redirectUri` and `response_type`. We check the client and the exact
//! redirect URI, make sure the user is logged in to the platform, ask for
//! consent, and send the user back with a one-time code.

use crate::app::App;
use crate::config::Config;
use crate::crypto::{self, SessionClaims};
use crate::error::Error;
use crate::http_util::{self, Params, Request, Response};
use crate::model::{AuthCodeRecord, ConnectionId, GrantPayload, UserId, CODE_PREFIX};
use crate::public_url;
use askama::Template;
use http::{Method, StatusCode};

const MAX_STATE: usize = 1024;

/// A validated authorization request.
#[derive(Debug)]
struct AuthzRequest {
    connection_id: ConnectionId,
    client_id: String,
    redirect_uri: String,
    state: Option<String>,
}

impl AuthzRequest {
    fn parse(p: &Params, cfg: &Config) -> Result<Self, Error> {
        // Client and redirect URI first: until both are known good we never
        // redirect anywhere (RFC 6749 section 4.1.2.1).
        let client_id = p.required(&["clientId", "client_id"])?;
        if client_id != cfg.client_id {
            return Err(Error::InvalidRequest("unknown clientId".into()));
        }
        let redirect_uri = p.required(&["redirectUri", "redirect_uri"])?;
        if redirect_uri != cfg.redirect_uri {
            return Err(Error::InvalidRequest(
                "redirectUri does not match the one registered for this client".into(),
            ));
        }
        let response_type = p.required(&["response_type", "responseType"])?;
        if response_type != "code" {
            return Err(Error::UnsupportedResponseType(
                "response_type must be \"code\"".into(),
            ));
        }
        let connection_id = ConnectionId::parse(p.required(&["connectionId", "connection_id"])?)?;
        let state = p.one_of(&["state"])?.filter(|s| !s.is_empty());
        if state.is_some_and(|s| s.len() > MAX_STATE) {
            return Err(Error::InvalidRequest(format!(
                "state longer than {MAX_STATE} bytes"
            )));
        }
        Ok(Self {
            connection_id,
            client_id: client_id.to_string(),
            redirect_uri: redirect_uri.to_string(),
            state: state.map(str::to_string),
        })
    }

    /// What the CSRF token is bound to: the request and the form's own
    /// random nonce, so every consent page shown has a token of its own
    /// (each works once; a new page gets a new one).
    fn binding<'a>(&'a self, nonce: &'a str) -> [&'a str; 5] {
        [
            self.connection_id.as_str(),
            &self.client_id,
            &self.redirect_uri,
            self.state.as_deref().unwrap_or(""),
            nonce,
        ]
    }
}

#[derive(Template)]
#[template(path = "consent.html")]
struct ConsentPage<'a> {
    platform_name: &'a str,
    user_id: &'a str,
    connection_id: &'a str,
    client_id: &'a str,
    redirect_uri: &'a str,
    redirect_host: &'a str,
    state: Option<&'a str>,
    csrf: &'a str,
    nonce: &'a str,
}

pub async fn authorize(app: &App, req: Request) -> Response {
    match handle(app, &req).await {
        Ok(r) => r,
        Err(e) => e.to_html_response(),
    }
}

async fn handle(app: &App, req: &Request) -> Result<Response, Error> {
    // The router routes GET (and HEAD, answered as GET) and POST here.
    match *req.method() {
        Method::POST => decide(app, req).await,
        _ => show_consent(app, req).await,
    }
}

/// The platform session, if the request carries a valid one: our HS256
/// session cookie, or (when configured) a JWT from the platform's identity
/// provider verified against its JWKS.
async fn session(app: &App, req: &Request, key: &[u8]) -> Option<SessionClaims> {
    let now = app.clock.now();
    if let Some(raw) = http_util::cookie(req, &app.config.session_cookie) {
        if let Ok(s) = crypto::verify_session(key, raw, now) {
            return Some(s);
        }
    }
    let jwt = app.platform_jwt()?;
    let raw = http_util::cookie(req, jwt.cookie())?;
    match jwt.verify(raw, now).await {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::info!(reason = %e, "authorize: platform JWT refused");
            None
        }
    }
}

async fn show_consent(app: &App, req: &Request) -> Result<Response, Error> {
    let params = Params::from_query(req)?;
    let authz = AuthzRequest::parse(&params, &app.config)?;
    let secrets = app.secrets.get().await?;
    let key = secrets.session_key.expose().as_bytes();
    let Some(session) = session(app, req, key).await else {
        let cfg = &app.config;
        let auth_uri = public_url::url(cfg, req, public_url::AUTHORIZE_PATH)?;
        let back = format!("{auth_uri}?{}", req.uri().query().unwrap_or(""));
        let login = http_util::append_query(&cfg.login_url, &[(&cfg.login_return_param, &back)]);
        tracing::info!(connection_id = %authz.connection_id, "authorize: no session, sent to login");
        return Ok(http_util::redirect(&login));
    };
    let nonce = crypto::random_b64(16);
    let csrf = crypto::csrf_token(key, &session, &authz.binding(&nonce));
    let host = authz
        .redirect_uri
        .split("://")
        .nth(1)
        .and_then(|r| r.split(['/', '?', '#']).next())
        .unwrap_or(&authz.redirect_uri);
    let page = ConsentPage {
        platform_name: &app.config.platform_name,
        user_id: &session.sub,
        connection_id: authz.connection_id.as_str(),
        client_id: &authz.client_id,
        redirect_uri: &authz.redirect_uri,
        redirect_host: host,
        state: authz.state.as_deref(),
        csrf: &csrf,
        nonce: &nonce,
    };
    let html = page
        .render()
        .map_err(|e| Error::Config(format!("consent template: {e}")))?;
    tracing::info!(connection_id = %authz.connection_id, "authorize: consent shown");
    let mut resp = http_util::html_response(StatusCode::OK, html);
    // The form posts here and is then redirected to Syncaroo: browsers apply
    // form-action to that redirect too, so Syncaroo's origin must be allowed.
    let origin = redirect_origin(&authz.redirect_uri);
    http_util::set_header(
        &mut resp,
        "content-security-policy",
        &format!(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' {origin}; frame-ancestors 'none'; base-uri 'none'"
        ),
    )
    .map_err(|_| Error::Config("OAUTH_REDIRECT_URI cannot be put in a header".into()))?;
    Ok(resp)
}

/// `scheme://host[:port]` of an absolute URL.
fn redirect_origin(uri: &str) -> String {
    match uri.split_once("://") {
        Some((scheme, rest)) => {
            let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
            format!("{scheme}://{authority}")
        }
        None => String::new(),
    }
}

async fn decide(app: &App, req: &Request) -> Result<Response, Error> {
    let params = http_util::form_body(req)?;
    let authz = AuthzRequest::parse(&params, &app.config)?;
    let secrets = app.secrets.get().await?;
    let key = secrets.session_key.expose().as_bytes();
    let session = session(app, req, key).await.ok_or_else(|| {
        Error::InvalidRequest(
            "your session has ended; log in and start the connection again".into(),
        )
    })?;
    let sent = params.required(&["csrf"])?;
    let nonce = params.required(&["nonce"])?;
    let expected = crypto::csrf_token(key, &session, &authz.binding(nonce));
    if !crypto::ct_eq(sent, &expected) {
        return Err(Error::Forbidden(
            "the form has expired or was not ours; start again".into(),
        ));
    }
    let mut back: Vec<(&str, &str)> = vec![("connectionId", authz.connection_id.as_str())];
    match params.required(&["decision"])? {
        "deny" => {
            back.push(("error", "access_denied"));
            back.push(("error_description", "The user denied the connection"));
            if let Some(s) = &authz.state {
                back.push(("state", s));
            }
            tracing::info!(connection_id = %authz.connection_id, "authorize: user denied");
            Ok(http_util::redirect(&http_util::append_query(
                &authz.redirect_uri,
                &back,
            )))
        }
        "authorize" => {
            let user = UserId::parse(&session.sub)?;
            let now = app.clock.now();
            let family = crypto::random_b64(16);
            let payload = GrantPayload {
                c: authz.connection_id.clone(),
                u: user.clone(),
                f: family.clone(),
            };
            let code = crypto::mint(CODE_PREFIX, Some(&payload));
            let record = AuthCodeRecord {
                hash: secrets.token_hash(&code),
                connection_id: authz.connection_id.clone(),
                user_id: user,
                client_id: authz.client_id.clone(),
                redirect_uri: authz.redirect_uri.clone(),
                family,
                expires_at: now + crate::clock::secs(app.config.code_ttl),
            };
            // One write: the code, the connection, and this form's single
            // use (a second post of the same form is refused).
            app.store
                .begin_authorization_from(&record, Some(&secrets.token_hash(sent)), now)
                .await?;
            back.push(("code", &code));
            if let Some(s) = &authz.state {
                back.push(("state", s));
            }
            tracing::info!(connection_id = %authz.connection_id, "authorize: code issued");
            Ok(http_util::redirect(&http_util::append_query(
                &authz.redirect_uri,
                &back,
            )))
        }
        _ => Err(Error::InvalidRequest(
            "decision must be authorize or deny".into(),
        )),
    }
}
