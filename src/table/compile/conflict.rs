//! Compile step: conflicts between routes. A host + match belongs to the
//! oldest route that claims it; a younger route claiming any of the same is
//! refused whole (never half-served).

use std::collections::HashMap;
use std::sync::Arc;

use super::matches::MatchKey;
use super::CompiledMatch;
use crate::diagnostic::{CompileError, Invalid};
use crate::matching::HostKey;

/// Which route owns each host + match so far.
#[derive(Default)]
pub(super) struct Claims(HashMap<(HostKey, MatchKey), Arc<str>>);

impl Claims {
    /// The errors of `matches` already claimed by an older route; empty
    /// when the route can be served.
    pub fn conflicts(&self, matches: &[CompiledMatch]) -> Vec<CompileError> {
        matches
            .iter()
            .filter_map(|m| {
                let owner = self.0.get(&(m.host.clone(), m.key.clone()))?;
                let reason = Invalid::Conflicted {
                    host: m.host.to_string(),
                    owner: owner.to_string(),
                };
                Some(CompileError::new(m.field.clone(), reason))
            })
            .collect()
    }

    /// Records that `resource` owns `host` + `key`.
    pub fn claim(&mut self, host: HostKey, key: MatchKey, resource: Arc<str>) {
        self.0.insert((host, key), resource);
    }
}
