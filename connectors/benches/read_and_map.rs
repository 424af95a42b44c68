//! Benchmark: how fast the connector side turns a third-party stream into mapped records.
//!
//! Reads the sandbox CRM's `contacts` stream (100,000 records, HTTP on loopback, the real OAuth
//! dance for the token, the spec engine paging through the API) and maps every record; then maps
//! the same records again with no HTTP, to show the mapping step alone. Prints `bench:` lines.
//!
//! Run with `cargo bench -p connectors --bench read_and_map`.

use connectors::engine::{read_all, Connection, Credentials, SpecSource};
use connectors::http::{HttpConfig, OutboundClient};
use connectors::mapping::Mapping;
use connectors::oauth::{OAuthApp, OAuthClient};
use connectors::sandbox::{Sandbox, SandboxClient, SandboxConfig, SeedSizes};
use connectors::spec::builtin_specs;
use secrecy::SecretString;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

const RECORDS: usize = 100_000;
const REDIRECT: &str = "http://127.0.0.1:9/oauth/callback";

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run());
}

async fn run() {
    let config = SandboxConfig {
        clients: vec![SandboxClient {
            client_id: "bench".into(),
            client_secret: "bench-secret".into(),
            redirect_uris: vec![REDIRECT.into()],
            name: "Benchmark".into(),
        }],
        seed: SeedSizes {
            customers: 0,
            orders: 0,
            contacts: RECORDS,
            companies: 0,
        },
        rate_limit_per_sec: 0,
        ..SandboxConfig::default()
    };
    let sandbox = Sandbox::spawn(config).await.expect("sandbox");
    let http = OutboundClient::new(HttpConfig {
        allow: vec!["127.0.0.1/32".parse().unwrap()],
        ..HttpConfig::default()
    })
    .expect("http client");
    let spec = Arc::new(
        builtin_specs()
            .unwrap()
            .into_iter()
            .find(|s| s.id == "sandbox-crm")
            .unwrap(),
    );
    let vars = BTreeMap::from([("sandbox_url".to_owned(), sandbox.base_url.clone())]);

    // The real OAuth dance: authorize URL, consent (approved by a form post), code exchange.
    let app = OAuthApp {
        client_id: "bench".into(),
        client_secret: SecretString::from("bench-secret"),
        redirect_url: REDIRECT.into(),
    };
    let oauth = OAuthClient::new(&spec, &app, &vars, http.clone()).unwrap();
    let start = oauth.authorize();
    let mut form: Vec<(String, String)> = start.url.query_pairs().into_owned().collect();
    form.push(("decision".into(), "approve".into()));
    let consent = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = consent
        .post(format!("{}/oauth/authorize", sandbox.base_url))
        .form(&form)
        .send()
        .await
        .unwrap();
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let code = url::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let tokens = oauth
        .exchange_code(&code, start.pkce_verifier.as_ref())
        .await
        .unwrap();

    let source = SpecSource::new(
        Connection {
            spec: spec.clone(),
            credentials: Credentials::OAuth2 {
                access_token: tokens.access_token,
            },
            vars,
        },
        http,
    );
    let mapping: Mapping = serde_json::from_value(serde_json::json!({ "fields": [
        { "to": "external_id", "op": "rename", "from": "id" },
        { "to": "email", "op": "rename", "from": "email" },
        { "to": "full_name", "op": "rename", "from": "name" },
        { "to": "company.id", "op": "rename", "from": "company_id" },
        { "to": "updated_on", "op": "date_format", "from": "updated_at", "output": "[year]-[month]-[day]" },
        { "to": "source", "op": "constant", "value": "sandbox-crm" }
    ]}))
    .unwrap();
    let compiled = mapping.compile().unwrap();

    // Read + map, HTTP included.
    let began = Instant::now();
    let mut raw = Vec::with_capacity(RECORDS);
    let mut mapped = 0usize;
    read_all(&source, "contacts", None, |page| {
        for record in page.records {
            compiled
                .apply(&record.data)
                .map_err(|e| connectors::ConnectorError::permanent(e.to_string()))?;
            mapped += 1;
            raw.push(record.data);
        }
        Ok(())
    })
    .await
    .unwrap();
    let read_secs = began.elapsed().as_secs_f64();
    assert_eq!(mapped, RECORDS, "every record read exactly once");

    // Mapping alone, over the same records, three passes.
    let passes = 3;
    let began = Instant::now();
    for _ in 0..passes {
        for data in &raw {
            std::hint::black_box(compiled.apply(std::hint::black_box(data)).unwrap());
        }
    }
    let map_secs = began.elapsed().as_secs_f64();

    let read_rate = RECORDS as f64 / read_secs;
    let map_rate = (RECORDS * passes) as f64 / map_secs;
    println!("bench: sandbox_read_and_map = {read_rate:.0} records/s");
    println!("bench: mapping_only = {map_rate:.0} records/s");
    println!(
        "bench: read_and_map_vs_mapping = {:.3} ratio",
        read_rate / map_rate
    );
    sandbox.shutdown().await;
}
