//! Browser-facing security policy shared by the page renderer and the server's middleware.

/// The Content-Security-Policy. Pages pass their nonce, which admits Leptos' inline hydration
/// scripts; every other response gets the policy without one. `wasm-unsafe-eval` lets the browser
/// compile the app's WebAssembly, and nothing else.
pub fn content_security_policy(nonce: Option<&str>) -> String {
    let script = match nonce {
        Some(nonce) => format!("script-src 'self' 'wasm-unsafe-eval' 'nonce-{nonce}'"),
        None => "script-src 'self' 'wasm-unsafe-eval'".to_owned(),
    };
    format!(
        "default-src 'self'; {script}; style-src 'self'; img-src 'self' data:; font-src 'self'; \
         connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; \
         frame-ancestors 'none'"
    )
}
