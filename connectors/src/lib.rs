//! The third-party side of Patchbay: provider specs, outbound HTTP, OAuth clients and the bundled
//! sandbox app. This crate knows nothing of Patchbay's database, tenants or UI; the connectors issue
//! fills it in.
