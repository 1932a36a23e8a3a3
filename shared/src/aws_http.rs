//! The AWS SDK's HTTP client: reqwest over the workspace's one TLS
//! configuration ([`crate::tls`]), instead of the SDK's default client
//! (which loads the system certificate store when it is built).
//!
//! The SDK signs and serialises a request, then hands it here whole; this
//! sends its body as it is (no copy: a transaction can be megabytes) and
//! hands back the whole answer. Connection failures and timeouts are reported as the SDK's
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

/// The longest a response may go without a byte arriving. Bodies are read
/// whole here, before the SDK's stalled-stream monitor could watch them, so
/// this is what stops a connection that stalls mid-answer.
const READ_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// The SDK asks its HTTP client for a connector on every request; this one
/// builds one per distinct timeout setting and hands the same one back
/// after, so every SDK client in the process shares one connection pool
/// (the connection warmed during init is the one the first request uses).
#[derive(Debug)]
pub struct ReqwestHttpClient {
    tls: rustls::ClientConfig,
    read_idle: Duration,
    connectors: Mutex<HashMap<TimeoutKey, SharedHttpConnector>>,
}

type TimeoutKey = (Option<Duration>, Option<Duration>);

impl ReqwestHttpClient {
    pub fn new(tls: rustls::ClientConfig) -> Self {
        Self {
            tls,
            read_idle: READ_IDLE_TIMEOUT,
            connectors: Mutex::new(HashMap::new()),
        }
    }

    /// Another limit on how long an answer may stall (tests).
    pub fn with_read_idle_timeout(mut self, limit: Duration) -> Self {
        self.read_idle = limit;
        self
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
            .read_timeout(self.read_idle)
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
            // Handed over as it is, not copied: a transaction of chunk
            // items is megabytes (the SDK keeps its own clone for retries).
            let mut req = http
                .request(parts.method, parts.uri.to_string())
                .headers(parts.headers)
                .body(reqwest::Body::wrap(body));
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server that answers every request with the start of a response
    /// and then stalls.
    async fn stalling_server() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 16 * 1024];
                    let _ = sock.read(&mut buf).await;
                    let _ = sock
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{\"Item\"")
                        .await;
                    tokio::time::sleep(Duration::from_secs(30)).await;
                });
            }
        });
        url
    }

    #[tokio::test]
    async fn a_stalled_answer_fails_the_request_instead_of_hanging() {
        let url = stalling_server().await;
        let http = SharedHttpClient::new(
            ReqwestHttpClient::new(crate::tls::client_config().unwrap())
                .with_read_idle_timeout(Duration::from_millis(300)),
        );
        let conf = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .http_client(http)
            .endpoint_url(url)
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::for_tests())
            .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
            .build();
        let client = aws_sdk_dynamodb::Client::from_conf(conf);
        let started = Instant::now();
        let err = client
            .get_item()
            .table_name("t")
            .key("pk", aws_sdk_dynamodb::types::AttributeValue::S("k".into()))
            .send()
            .await
            .expect_err("a stalled body is an error");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert!(
            matches!(
                err,
                aws_sdk_dynamodb::error::SdkError::DispatchFailure(_)
                    | aws_sdk_dynamodb::error::SdkError::TimeoutError(_)
            ),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn one_connector_per_setting() {
        let c = ReqwestHttpClient::new(crate::tls::client_config().unwrap());
        let rc = aws_smithy_runtime_api::client::runtime_components::RuntimeComponentsBuilder::for_tests()
            .build()
            .unwrap();
        let a = HttpConnectorSettings::builder()
            .connect_timeout(Duration::from_secs(1))
            .build();
        let b = HttpConnectorSettings::builder()
            .connect_timeout(Duration::from_secs(2))
            .build();
        c.http_connector(&a, &rc);
        c.http_connector(&a, &rc);
        assert_eq!(c.connectors(), 1);
        c.http_connector(&b, &rc);
        assert_eq!(c.connectors(), 2);
    }
}
