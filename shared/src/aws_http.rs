//! The AWS SDK's HTTP client: reqwest over the workspace's one TLS
//! configuration ([`crate::tls`]), instead of the SDK's default client
//! (which loads the system certificate store when it is built).
//!
//! The SDK signs and serialises a request, then hands it here whole; this
//! sends it and hands back the whole answer. DynamoDB, Secrets Manager and
//! SQS bodies are small and in memory, so bodies are buffered, never
//! streamed. Connection failures and timeouts are reported as the SDK's
//! transient kinds, so its retry strategy treats them as before.

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Connect timeout when the SDK's settings give none (the SDK's own default).
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_millis(3100);

/// The SDK asks its HTTP client for a connector on every request; this one
/// builds one per distinct timeout setting and hands the same one back
/// after, so every SDK client in the process shares one connection pool
/// (the connection warmed during init is the one the first request uses).
#[derive(Debug)]
pub struct ReqwestHttpClient {
    tls: rustls::ClientConfig,
    connectors: Mutex<HashMap<TimeoutKey, SharedHttpConnector>>,
}

type TimeoutKey = (Option<Duration>, Option<Duration>);

impl ReqwestHttpClient {
    pub fn new(tls: rustls::ClientConfig) -> Self {
        Self {
            tls,
            connectors: Mutex::new(HashMap::new()),
        }
    }

    /// As the SDK's `SharedHttpClient`, for `ConfigLoader::http_client`.
    pub fn shared(tls: rustls::ClientConfig) -> SharedHttpClient {
        SharedHttpClient::new(Self::new(tls))
    }

    fn build(
        &self,
        connect_timeout: Option<Duration>,
        read_timeout: Option<Duration>,
    ) -> SharedHttpConnector {
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(self.tls.clone())
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT))
            .tcp_nodelay(true)
            .build()
            .expect("a reqwest client on a prebuilt TLS config");
        SharedHttpConnector::new(ReqwestConnector { http, read_timeout })
    }

    /// How many connectors (connection pools) exist: one per distinct
    /// setting the SDK has asked for.
    pub fn connectors(&self) -> usize {
        self.connectors.lock().map(|c| c.len()).unwrap_or(0)
    }
}

impl HttpClient for ReqwestHttpClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        let key = (settings.connect_timeout(), settings.read_timeout());
        let mut cache = self.connectors.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .entry(key)
            .or_insert_with(|| self.build(key.0, key.1))
            .clone()
    }
}

#[derive(Debug)]
struct ReqwestConnector {
    http: reqwest::Client,
    read_timeout: Option<Duration>,
}

fn connector_error(e: reqwest::Error) -> ConnectorError {
    // Only the error's kind and Display reach the SDK; reqwest errors carry
    // the URL (no query string on AWS calls) and never a header.
    if e.is_timeout() {
        ConnectorError::timeout(e.into())
    } else {
        ConnectorError::io(e.into())
    }
}

impl HttpConnector for ReqwestConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let http = self.http.clone();
        let read_timeout = self.read_timeout;
        HttpConnectorFuture::new(async move {
            let request = request
                .try_into_http1x()
                .map_err(|e| ConnectorError::user(e.into()))?;
            let (parts, body) = request.into_parts();
            let Some(bytes) = body.bytes().map(bytes::Bytes::copy_from_slice) else {
                return Err(ConnectorError::user(
                    "streaming request bodies are not supported by this client".into(),
                ));
            };
            let mut req = http
                .request(parts.method, parts.uri.to_string())
                .headers(parts.headers)
                .body(bytes);
            if let Some(t) = read_timeout {
                req = req.timeout(t);
            }
            let resp = req.send().await.map_err(connector_error)?;
            let status = resp.status();
            let headers = resp.headers().clone();
            let body = resp.bytes().await.map_err(connector_error)?;
            let mut out = http::Response::new(SdkBody::from(body));
            *out.status_mut() = status;
            *out.headers_mut() = headers;
            HttpResponse::try_from(out).map_err(|e| ConnectorError::other(e.into(), None))
        })
    }
}

/// The one `SdkConfig` of a process: the standard AWS environment (region,
/// credentials, `AWS_ENDPOINT_URL_*`) with [`ReqwestHttpClient`] on
/// [`crate::tls::client_config`]. Errors only on an unusable `SSL_CERT_FILE`.
///
/// Where the environment already holds the answer, as it always does on
/// Lambda (`AWS_REGION`, `AWS_ACCESS_KEY_ID` and friends), the region and
/// the credentials are taken from it directly instead of building the
/// default provider chains (profile files, web identity with its STS
/// client, ECS, IMDS): less work in every cold start. Elsewhere (a
/// developer's profile, say) the default chains run as usual.
pub async fn load_sdk_config() -> Result<aws_config::SdkConfig, String> {
    let tls = crate::tls::client_config()?;
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(ReqwestHttpClient::shared(tls));
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if let Some(region) = env("AWS_REGION") {
        loader = loader.region(aws_config::Region::new(region));
    }
    if env("AWS_ACCESS_KEY_ID").is_some() && env("AWS_SECRET_ACCESS_KEY").is_some() {
        loader = loader.credentials_provider(
            aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
        );
    }
    Ok(loader.load().await)
}
