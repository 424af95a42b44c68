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

    pub fn connection(&self) -> &Connection {
        &self.api.connection
    }
}

#[async_trait]
impl Destination for SpecDestination {
    fn can_delete(&self, stream_name: &str) -> bool {
        self.api
            .connection
            .spec
            .stream(stream_name)
            .and_then(|s| s.write.as_ref())
            .is_some_and(|w| w.delete_path.is_some())
    }

    async fn delete(&self, stream_name: &str, id: &str) -> Result<(), ConnectorError> {
        let spec = &self.api.connection.spec;
        let path = spec
            .stream(stream_name)
            .and_then(|s| s.write.as_ref())
            .and_then(|w| w.delete_path.as_deref())
            .ok_or_else(|| {
                ConnectorError::permanent(format!(
                    "{}: records of `{stream_name}` cannot be deleted",
                    spec.id
                ))
            })?;
        let vars = BTreeMap::from([("id".to_owned(), id.to_owned())]);
        let url = self.api.connection.url(path, &vars, &[])?;
        let mut req = OutboundRequest::get(url);
        req.method = http::Method::DELETE;
        match self.api.call(req).await {
            Ok(_) => Ok(()),
            // Already gone: what a delete wants.
            Err(err) if err.status == Some(404) => Ok(()),
            Err(err) => Err(err),
        }
    }

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
