//! `secrets rotate-client-secret`: a new version of the secret that holds
//! `clientSecret`, with a new random value and every other key of it kept
//! byte for byte (a regenerated `tokenHashKey` would make every stored
//! token unfindable). Secrets Manager stages the new version `AWSCURRENT`
//! and the replaced one `AWSPREVIOUS`, which the functions accept for
//! `CLIENT_SECRET_GRACE_SECONDS` (shared/src/secrets/rotation.rs).

use serde_json::{json, Value};
use std::collections::HashMap;
use syncaroo_shared::public_url::SetupBlock;
use syncaroo_shared::Error;

/// Puts the new version; what to print: the secret, its new version and
/// the new setup block for Syncaroo.
pub async fn rotate(
    sdk: &aws_config::SdkConfig,
    secret_id: &str,
    site_uri: &str,
    client_id: &str,
) -> Result<Value, Error> {
    let client = aws_sdk_secretsmanager::Client::new(sdk);
    let failed = |op: &str, e: String| Error::Config(format!("{op} {secret_id}: {e}"));
    let current = client
        .get_secret_value()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|e| failed("GetSecretValue", aws_message(&e)))?;
    let doc = current
        .secret_string()
        .ok_or_else(|| failed("GetSecretValue", "no SecretString".into()))?;
    let new_secret = syncaroo_shared::crypto::random_b64(32);
    let new_doc = replace_client_secret(doc, &new_secret)?;
    let put = client
        .put_secret_value()
        .secret_id(secret_id)
        .secret_string(new_doc)
        .send()
        .await
        .map_err(|e| failed("PutSecretValue", aws_message(&e)))?;
    Ok(json!({
        "secretId": secret_id,
        "versionId": put.version_id(),
        "setup": SetupBlock::new(site_uri.trim_end_matches('/'), client_id, &new_secret),
    }))
}

fn aws_message<E: std::error::Error + 'static>(
    e: &aws_sdk_secretsmanager::error::SdkError<E>,
) -> String {
    e.as_service_error()
        .map(|s| s.to_string())
        .unwrap_or_else(|| "request failed".into())
}

/// `doc` with its `clientSecret` string replaced by `new`, every other byte
/// as it was: the old value's JSON token is swapped where it stands.
pub fn replace_client_secret(doc: &str, new: &str) -> Result<String, Error> {
    let bad = |why: &str| Error::InvalidRequest(format!("the secret document {why}"));
    let keys: HashMap<String, &serde_json::value::RawValue> =
        serde_json::from_str(doc).map_err(|_| bad("is not a JSON object"))?;
    let raw = keys
        .get("clientSecret")
        .ok_or_else(|| {
            bad("has no clientSecret: pass the secret that holds it (output YourClientSecretArn)")
        })?
        .get();
    if !raw.starts_with('"') {
        return Err(bad("holds a clientSecret that is not a string"));
    }
    // A borrowed RawValue is a slice of `doc`: its place is exact.
    let start = raw.as_ptr() as usize - doc.as_ptr() as usize;
    let token = serde_json::to_string(new).expect("a string serialises");
    Ok(format!(
        "{}{token}{}",
        &doc[..start],
        &doc[start + raw.len()..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_client_secret_changes_byte_for_byte() {
        let doc = "{ \"tokenHashKey\" : \"k\\u00e9y\",\n  \"clientSecret\":\"old\", \"n\": 1.50 }";
        let out = replace_client_secret(doc, "new").unwrap();
        assert_eq!(
            out,
            "{ \"tokenHashKey\" : \"k\\u00e9y\",\n  \"clientSecret\":\"new\", \"n\": 1.50 }"
        );
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["clientSecret"], "new");
    }

    #[test]
    fn a_document_without_a_string_client_secret_is_refused() {
        for doc in [
            "[]",
            "{\"sessionKey\": \"x\"}",
            "{\"clientSecret\": 5}",
            "nope",
        ] {
            assert!(matches!(
                replace_client_secret(doc, "x"),
                Err(Error::InvalidRequest(_))
            ));
        }
    }
}
