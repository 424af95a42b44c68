//! Every TOML example in docs/connectors.md loads as a valid spec.

use connectors::spec::load_str;

#[test]
fn every_example_in_the_connector_guide_loads() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/connectors.md");
    let doc = std::fs::read_to_string(path).expect("docs/connectors.md");
    let mut examples = Vec::new();
    let mut current: Option<String> = None;
    for line in doc.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```toml") => current = Some(String::new()),
            (Some(block), "```") => {
                examples.push(std::mem::take(block));
                current = None;
            }
            (Some(block), text) => {
                block.push_str(text);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    assert!(examples.len() >= 5, "found {} examples", examples.len());
    for (i, example) in examples.iter().enumerate() {
        let name = format!("docs/connectors.md example {}", i + 1);
        if let Err(err) = load_str(&name, example) {
            panic!("{err}\n---\n{example}");
        }
    }
}
