//! Where dates of birth are kept: a table per stage, keyed by the normalized username. The
//! handler sees only the `Store` trait; `Dynamo` is the thin adapter over DynamoDB, and the
//! tests use an in-memory store (cfg(test), in `routes`).
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::AttributeValue;
use std::future::Future;
use thiserror::Error;

/// The table's partition key (S): the username, lower-cased (contract::user_key).
pub const KEY: &str = "username";
/// The stored date of birth (S), `YYYY-MM-DD`.
pub const DATE_OF_BIRTH: &str = "dateOfBirth";

#[derive(Debug, Error)]
#[error("DynamoDB table {table}: {message}")]
pub struct StoreError {
    pub table: String,
    pub message: String,
}

pub trait Store: Send + Sync + 'static {
    /// The stored date of birth of `user_key`, `YYYY-MM-DD`, if any.
    fn get(
        &self,
        table: &str,
        user_key: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    /// Writes (or overwrites) the date of birth of `user_key`.
    fn put(
        &self,
        table: &str,
        user_key: &str,
        date_of_birth: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// DynamoDB: `GetItem` (strongly consistent, so a GET right after a PUT sees it) and
/// `PutItem`, the only two actions the function's role allows.
#[derive(Debug, Clone)]
pub struct Dynamo {
    client: Client,
}

impl Dynamo {
    pub fn new(client: Client) -> Self {
        Dynamo { client }
    }
}

fn store_error(table: &str, error: impl std::error::Error) -> StoreError {
    StoreError {
        table: table.to_owned(),
        message: DisplayErrorContext(error).to_string(),
    }
}

impl Store for Dynamo {
    async fn get(&self, table: &str, user_key: &str) -> Result<Option<String>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(table)
            .key(KEY, AttributeValue::S(user_key.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error(table, e))?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        match item.get(DATE_OF_BIRTH) {
            Some(AttributeValue::S(date)) => Ok(Some(date.clone())),
            other => Err(StoreError {
                table: table.to_owned(),
                message: format!(
                    "item {user_key:?} has no string {DATE_OF_BIRTH} (found {other:?})"
                ),
            }),
        }
    }

    async fn put(
        &self,
        table: &str,
        user_key: &str,
        date_of_birth: &str,
    ) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(table)
            .item(KEY, AttributeValue::S(user_key.to_owned()))
            .item(DATE_OF_BIRTH, AttributeValue::S(date_of_birth.to_owned()))
            .send()
            .await
            .map_err(|e| store_error(table, e))?;
        Ok(())
    }
}
