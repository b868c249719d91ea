//! The service manifest (`service.toml`): its serde form and its conversion to a [`super::ServiceDef`].
