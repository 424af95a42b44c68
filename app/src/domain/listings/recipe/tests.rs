use super::*;
use crate::model::listing::{ConfigInput, MappingInput};

fn form() -> ListingForm {
    ListingForm {
        source_provider: "sandbox-crm".into(),
        source_streams: vec!["contacts".into()],
        destination_provider: STORE_PROVIDER.into(),
        destination_stream: "contacts".into(),
        mapping: vec![
            MappingInput {
                to: "email".into(),
                from: "email".into(),
            },
            MappingInput::default(),
        ],
        default_schedule: "1h".into(),
        allowed_schedules: vec!["24h".into()],
        triggers: vec!["manual".into(), "schedule".into()],
        ..ListingForm::default()
    }
}

fn field_of(result: Result<Recipe, AppError>) -> String {
    result.unwrap_err().field().unwrap_or_default().to_owned()
}

#[test]
fn a_good_recipe_parses_with_the_default_among_the_allowed() {
    let recipe = parse_recipe(&form()).unwrap();
    assert_eq!(recipe.source_streams, ["contacts"]);
    assert_eq!(recipe.mapping.fields.len(), 1, "blank rows are dropped");
    assert_eq!(
        recipe.allowed_schedules,
        [Interval::Hourly, Interval::Daily]
    );
    assert_eq!(recipe.triggers, [Trigger::Schedule, Trigger::Manual]);
    check_complete(&recipe).unwrap();
}

#[test]
fn a_missing_stream_is_refused_beside_the_streams() {
    let mut f = form();
    f.source_streams = vec!["deals".into()];
    let err = parse_recipe(&f).unwrap_err();
    assert_eq!(err.field(), Some("source_streams"));
    assert!(
        err.to_string().contains("no stream \u{201c}deals\u{201d}"),
        "{err}"
    );
    assert!(err.to_string().contains("contacts, companies"), "{err}");
}

#[test]
fn unknown_providers_and_unwritable_destinations_are_refused() {
    let mut f = form();
    f.source_provider = "nope".into();
    assert_eq!(field_of(parse_recipe(&f)), "source_provider");
    let mut f = form();
    f.destination_provider = "nope".into();
    assert_eq!(field_of(parse_recipe(&f)), "destination_provider");
    let mut f = form();
    f.destination_provider = "stripe".into();
    f.destination_stream = "charges".into();
    assert_eq!(field_of(parse_recipe(&f)), "destination_stream");
    let mut f = form();
    f.destination_stream = "Bad Name".into();
    assert_eq!(field_of(parse_recipe(&f)), "destination_stream");
}

#[test]
fn a_mapping_with_an_unknown_source_field_is_refused() {
    let mut f = form();
    f.mapping = vec![MappingInput {
        to: "email".into(),
        from: "emial".into(),
    }];
    let err = parse_recipe(&f).unwrap_err();
    assert_eq!(err.field(), Some("mapping"));
    assert!(err.to_string().contains("emial"), "{err}");
}

#[test]
fn a_mapping_into_an_unknown_destination_field_is_refused() {
    let mut f = form();
    f.destination_provider = "sandbox-shop".into();
    f.destination_stream = "customers".into();
    f.mapping = vec![MappingInput {
        to: "favourite_colour".into(),
        from: "email".into(),
    }];
    let err = parse_recipe(&f).unwrap_err();
    assert_eq!(err.field(), Some("mapping"));
    assert!(err.to_string().contains("favourite_colour"), "{err}");
}

#[test]
fn half_filled_mapping_rows_and_duplicate_targets_are_refused() {
    let mut f = form();
    f.mapping = vec![MappingInput {
        to: "email".into(),
        from: String::new(),
    }];
    assert_eq!(field_of(parse_recipe(&f)), "mapping");
    let mut f = form();
    f.mapping = vec![
        MappingInput {
            to: "email".into(),
            from: "email".into(),
        },
        MappingInput {
            to: "email".into(),
            from: "name".into(),
        },
    ];
    assert_eq!(field_of(parse_recipe(&f)), "mapping");
}

#[test]
fn config_fields_are_checked_row_by_row() {
    let mut f = form();
    f.config = vec![
        ConfigInput {
            key: "list_id".into(),
            kind: "number".into(),
            label: "List".into(),
            default: "12".into(),
            required: Some("on".into()),
            ..ConfigInput::default()
        },
        ConfigInput::default(),
    ];
    let recipe = parse_recipe(&f).unwrap();
    assert_eq!(recipe.config_fields.len(), 1);
    assert!(recipe.config_fields[0].required);
    for bad in [
        ConfigInput {
            key: "List Id".into(),
            label: "x".into(),
            ..ConfigInput::default()
        },
        ConfigInput {
            key: "n".into(),
            kind: "number".into(),
            label: "N".into(),
            default: "ten".into(),
            ..ConfigInput::default()
        },
        ConfigInput {
            key: "n".into(),
            kind: "colour".into(),
            label: "N".into(),
            ..ConfigInput::default()
        },
        ConfigInput {
            key: "n".into(),
            label: String::new(),
            help: "h".into(),
            ..ConfigInput::default()
        },
    ] {
        let mut f = form();
        f.config = vec![bad.clone()];
        assert_eq!(field_of(parse_recipe(&f)), "config", "{bad:?}");
    }
}

#[test]
fn webhooks_need_a_source_that_sends_them() {
    let mut f = form();
    f.triggers = vec!["webhook".into()];
    assert!(
        parse_recipe(&f).is_ok(),
        "the sandbox CRM signs its webhooks"
    );
    f.source_provider = "hubspot".into();
    f.source_streams = vec!["contacts".into()];
    f.mapping = vec![MappingInput {
        to: "id".into(),
        from: "id".into(),
    }];
    assert_eq!(field_of(parse_recipe(&f)), "triggers");
    f.triggers = vec![];
    assert_eq!(field_of(parse_recipe(&f)), "triggers");
}

#[test]
fn an_incomplete_draft_saves_but_cannot_be_submitted() {
    let f = ListingForm {
        triggers: vec!["manual".into()],
        ..ListingForm::default()
    };
    let recipe = parse_recipe(&f).unwrap();
    assert_eq!(
        check_complete(&recipe).unwrap_err().field(),
        Some("source_provider")
    );
}

#[test]
fn listing_pages_name_scopes_and_fields() {
    let recipe = parse_recipe(&form()).unwrap();
    let perms = permissions(&recipe);
    assert!(perms
        .iter()
        .any(|p| p.scope == "crm.read" && p.description.contains("Read your contacts")));
    let streams = synced_streams(&recipe);
    assert_eq!(streams[0].label, "Contacts");
    assert_eq!(streams[0].fields, ["email"]);
}
