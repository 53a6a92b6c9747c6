//! A field-masked change to a rollout document, produced by the pure actions
//! and applied by every store.

use serde_json::Value;

use super::rollout::Fields;

/// A field-masked change: `Some(v)` sets a field, `None` deletes it. Fields not
/// named are left exactly as they are, so other tools' fields survive.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Patch {
    pub changes: Vec<(String, Option<Value>)>,
}

impl Patch {
    pub fn set(&mut self, field: &str, value: Value) -> &mut Self {
        self.changes.retain(|(f, _)| f != field);
        self.changes.push((field.to_string(), Some(value)));
        self
    }

    pub fn delete(&mut self, field: &str) -> &mut Self {
        self.changes.retain(|(f, _)| f != field);
        self.changes.push((field.to_string(), None));
        self
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    pub fn field_names(&self) -> impl Iterator<Item = &str> {
        self.changes.iter().map(|(f, _)| f.as_str())
    }

    /// Applies the patch to a copy of `fields` (what a store writes).
    pub fn apply_to(&self, fields: &mut Fields) {
        for (name, value) in &self.changes {
            match value {
                Some(v) => {
                    fields.insert(name.clone(), v.clone());
                }
                None => {
                    fields.remove(name);
                }
            }
        }
    }
}
