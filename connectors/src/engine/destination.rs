//! [`SpecDestination`]: writes records through a stream's `write` section, with the idempotency
//! header when the API has one.

use super::request::{field, scalar, Api};
use super::{Connection, Destination, WriteOp, WriteResult};
use crate::error::ConnectorError;
use crate::http::{OutboundClient, OutboundRequest, RateBudget};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A destination driven by a provider spec.
#[derive(Clone)]
pub struct SpecDestination {
    api: Api,
}

impl SpecDestination {
    pub fn new(connection: Connection, http: OutboundClient) -> Self {
        SpecDestination {
            api: Api::new(connection, http),
        }
    }

    pub fn with_budget(mut self, budget: Arc<dyn RateBudget>) -> Self {
        self.api.set_budget(budget);
        self
    }
}

#[async_trait]
impl Destination for SpecDestination {
    async fn write(
        &self,
        stream_name: &str,
        op: &WriteOp,
        idempotency_key: &str,
    ) -> Result<WriteResult, ConnectorError> {
        let spec = &self.api.connection.spec;
        let stream = spec.stream(stream_name).ok_or_else(|| {
            ConnectorError::permanent(format!("{} has no stream `{stream_name}`", spec.id))
        })?;
        let write = stream.write.as_ref().ok_or_else(|| {
            ConnectorError::permanent(format!(
                "{}: stream `{stream_name}` cannot be written",
                spec.id
            ))
        })?;
        let (method, path, data, vars) = match op {
            WriteOp::Create { data } => ("POST", write.create_path.as_str(), data, BTreeMap::new()),
            WriteOp::Update { id, data } => {
                let path = write.update_path.as_deref().ok_or_else(|| {
                    ConnectorError::permanent(format!(
                        "{}: stream `{stream_name}` cannot update records",
                        spec.id
                    ))
                })?;
                (
                    write.update_method.as_str(),
                    path,
                    data,
                    BTreeMap::from([("id".to_owned(), id.clone())]),
                )
            }
        };
        let url = self.api.connection.url(path, &vars, &[])?;
        let body = match &write.body_key {
            Some(key) => serde_json::json!({ key: data }),
            None => data.clone(),
        };
        let mut req = OutboundRequest::post_json(url, &body);
        req.method = method
            .parse()
            .map_err(|_| ConnectorError::permanent(format!("bad method {method}")))?;
        if let Some(header) = &write.idempotency_header {
            req = req.header(header, idempotency_key);
        }
        let res = self.api.call(req).await?;
        let id = serde_json::from_slice::<serde_json::Value>(&res.body)
            .ok()
            .and_then(|v| field(&v, &stream.primary_key).and_then(scalar));
        Ok(WriteResult { id })
    }
}
