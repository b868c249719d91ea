//! Reading the REST API's JSON answers.

use serde_json::Value;

/// The item of the array `list` whose `"name"` is `name`; panics showing `list` if none is.
#[track_caller]
pub fn named<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array()
        .unwrap_or_else(|| panic!("not an array: {list}"))
        .iter()
        .find(|item| item["name"] == name)
        .unwrap_or_else(|| panic!("nothing named {name:?} in {list}"))
}
