//! The Syncaroo API credentials item and the admin connect state.

use super::item::*;
use super::items::{read, CredentialsItem};
use super::DynamoStore;
use crate::error::Error;
use crate::secrets::SecretString;
use crate::store::credentials::{CredentialStatus, NewCredentials, SyncarooCredentials};
use crate::store::keys::{admin_state_pk, ADMIN_STATE_SK};
use crate::store::CredentialsStore;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnValue;

const CREDS_PK: &str = crate::store::keys::CREDENTIALS_PK;
const CREDS_SK: &str = crate::store::keys::CREDENTIALS_SK;

impl DynamoStore {
    fn creds_update(
        &self,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(CREDS_PK, CREDS_SK)))
    }
}

#[async_trait]
impl CredentialsStore for DynamoStore {
    async fn get_credentials(&self) -> Result<Option<SyncarooCredentials>, Error> {
        let item = self.get_consistent(key(CREDS_PK, CREDS_SK)).await?;
        let Some(item) = item.as_ref() else {
            return Ok(None);
        };
        let parse = || -> Option<SyncarooCredentials> {
            let i: CredentialsItem = read(item)?;
            Some(SyncarooCredentials {
                access_token: SecretString::new(i.access_token),
                expires_at: i.expires_at,
                refresh_token: SecretString::new(i.refresh_token),
                version: i.version,
                lease_owner: i.lease_owner,
                lease_until_ms: i.lease_until_ms,
                status: CredentialStatus::parse(&i.status)?,
                reason: i.reason,
                updated_at: i.updated_at,
            })
        };
        parse()
            .map(Some)
            .ok_or_else(|| Error::corrupt("credentials item is malformed"))
    }

    async fn put_credentials(&self, new: &NewCredentials, now: i64) -> Result<u64, Error> {
        let out = self
            .creds_update()
            .update_expression(
                "SET #access_token = :a, #expires_at = :e, #refresh_token = :r, #status = :active, #updated_at = :now, #version = if_not_exists(#version, :zero) + :one REMOVE #lease_owner, #lease_until_ms, #reason",
            )
            .set_expression_attribute_names(names(&[
                "access_token", "expires_at", "refresh_token", "status", "updated_at", "version",
                "lease_owner", "lease_until_ms", "reason",
            ]))
            .expression_attribute_values(":a", s(new.access_token.expose()))
            .expression_attribute_values(":e", n(new.expires_at))
            .expression_attribute_values(":r", s(new.refresh_token.expose()))
            .expression_attribute_values(":active", s(CredentialStatus::Active.as_str()))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| store_err("UpdateItem", e))?;
        Ok(out
            .attributes()
            .and_then(|a| get_n(a, "version"))
            .unwrap_or(0) as u64)
    }

    async fn acquire_lease(
        &self,
        version: u64,
        owner: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool, Error> {
        let res = self
            .creds_update()
            .update_expression("SET #lease_owner = :o, #lease_until_ms = :u")
            .condition_expression(
                "#version = :v AND #status = :active AND (attribute_not_exists(#lease_until_ms) OR #lease_until_ms <= :now)",
            )
            .set_expression_attribute_names(names(&["lease_owner", "lease_until_ms", "version", "status"]))
            .expression_attribute_values(":o", s(owner))
            .expression_attribute_values(":u", n(until_ms))
            .expression_attribute_values(":v", n(version as i64))
            .expression_attribute_values(":active", s(CredentialStatus::Active.as_str()))
            .expression_attribute_values(":now", n(now_ms))
            .send()
            .await;
        conditional(res, "UpdateItem")
    }

    async fn complete_refresh(
        &self,
        version: u64,
        owner: &str,
        new: &NewCredentials,
        now: i64,
    ) -> Result<bool, Error> {
        let res = self
            .creds_update()
            .update_expression(
                "SET #access_token = :a, #expires_at = :e, #refresh_token = :r, #updated_at = :now, #version = #version + :one REMOVE #lease_owner, #lease_until_ms",
            )
            .condition_expression("#version = :v AND #lease_owner = :o")
            .set_expression_attribute_names(names(&[
                "access_token", "expires_at", "refresh_token", "updated_at", "version",
                "lease_owner", "lease_until_ms",
            ]))
            .expression_attribute_values(":a", s(new.access_token.expose()))
            .expression_attribute_values(":e", n(new.expires_at))
            .expression_attribute_values(":r", s(new.refresh_token.expose()))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":v", n(version as i64))
            .expression_attribute_values(":o", s(owner))
            .send()
            .await;
        conditional(res, "UpdateItem")
    }

    async fn release_lease(&self, owner: &str) -> Result<(), Error> {
        let res = self
            .creds_update()
            .update_expression("REMOVE #lease_owner, #lease_until_ms")
            .condition_expression("#lease_owner = :o")
            .set_expression_attribute_names(names(&["lease_owner", "lease_until_ms"]))
            .expression_attribute_values(":o", s(owner))
            .send()
            .await;
        // Not written when the condition no longer holds: nothing to do.
        conditional(res, "UpdateItem").map(|_| ())
    }

    async fn mark_needs_reauth(
        &self,
        version: u64,
        owner: &str,
        reason: &str,
        now: i64,
    ) -> Result<bool, Error> {
        let res = self
            .creds_update()
            .update_expression(
                "SET #status = :n, #reason = :r, #updated_at = :now REMOVE #lease_owner, #lease_until_ms",
            )
            // Only the refresh token that was refused: the version read and
            // the lease still ours.
            .condition_expression("#version = :v AND #lease_owner = :o")
            .set_expression_attribute_names(names(&[
                "status",
                "reason",
                "updated_at",
                "lease_owner",
                "lease_until_ms",
                "version",
            ]))
            .expression_attribute_values(":n", s(CredentialStatus::NeedsReauth.as_str()))
            .expression_attribute_values(":r", s(reason))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":v", n(version as i64))
            .expression_attribute_values(":o", s(owner))
            .send()
            .await;
        conditional(res, "UpdateItem")
    }

    async fn put_oauth_state(&self, hash: &str, expires_at: i64) -> Result<(), Error> {
        let mut item = key(admin_state_pk(hash), ADMIN_STATE_SK);
        item.insert("expires_at".into(), n(expires_at));
        item.insert("ttl".into(), self.ttl(expires_at));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| store_err("PutItem", e))?;
        Ok(())
    }

    async fn take_oauth_state(&self, hash: &str, now: i64) -> Result<bool, Error> {
        let res = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(admin_state_pk(hash), ADMIN_STATE_SK)))
            .condition_expression("attribute_exists(#pk) AND #expires_at > :now")
            .set_expression_attribute_names(names(&["pk", "expires_at"]))
            .expression_attribute_values(":now", n(now))
            .send()
            .await;
        conditional(res, "DeleteItem")
    }
}
