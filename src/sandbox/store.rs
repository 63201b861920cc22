//! The one in-memory, versioned resource store.
//!
//! Every request works on it through [`Store::read`] / [`Store::write`], which hold one
//! `std::sync::Mutex` for the length of a synchronous closure: a check and the write it
//! guards (double booking, a version precondition) happen under the same lock, and no
//! lock is ever held across an `.await`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use jiff::Timestamp;
use serde_json::{Map, Value};

pub(crate) type Json = Map<String, Value>;

pub(crate) struct Store {
    state: Mutex<State>,
}

impl Store {
    pub(crate) fn new(state: State) -> Self {
        Self {
            state: Mutex::new(state),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means a closure panicked; the data itself stays usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        f(&self.lock())
    }

    pub(crate) fn write<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.lock())
    }
}

/// One stored version of a resource, exactly as it is served (with `id` and `meta`).
#[derive(Debug, Clone)]
pub(crate) struct Version {
    pub(crate) vid: u64,
    pub(crate) last_updated: Timestamp,
    pub(crate) resource: Value,
}

#[derive(Debug, Clone)]
pub(crate) struct Record {
    pub(crate) id: String,
    /// Creation order, the default order of search results.
    pub(crate) seq: u64,
    pub(crate) created_via_api: bool,
    /// Server-side data that is not part of the resource (e.g. whether a practitioner is
    /// scheduleable, a signature's file).
    pub(crate) hidden: Json,
    versions: Vec<Version>,
}

impl Record {
    pub(crate) fn current(&self) -> &Version {
        // `versions` is never empty: a record is born with its first version.
        &self.versions[self.versions.len() - 1]
    }

    pub(crate) fn resource(&self) -> &Value {
        &self.current().resource
    }

    /// The current resource as an object (always one: the store only takes objects).
    pub(crate) fn body(&self) -> &Json {
        static EMPTY: std::sync::OnceLock<Json> = std::sync::OnceLock::new();
        self.resource()
            .as_object()
            .unwrap_or_else(|| EMPTY.get_or_init(Json::new))
    }

    /// Every version, oldest first.
    pub(crate) fn versions(&self) -> &[Version] {
        &self.versions
    }

    pub(crate) fn version(&self, vid: u64) -> Option<&Version> {
        self.versions.iter().find(|v| v.vid == vid)
    }
}

#[derive(Debug, Default)]
pub(crate) struct State {
    resources: HashMap<String, BTreeMap<String, Record>>,
    /// Deleted resources with their history, by type and id: what tells a read of a
    /// deleted resource (410 Gone) from one of an id never used (404).
    deleted: HashMap<String, BTreeMap<String, Record>>,
    next_seq: u64,
    created: BTreeMap<String, u64>,
}

/// Counts for `GET /_sandbox/stats`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stats {
    pub(crate) created: BTreeMap<String, u64>,
    pub(crate) appointments_not_cancelled: u64,
}

impl State {
    pub(crate) fn get(&self, ty: &str, id: &str) -> Option<&Record> {
        self.resources.get(ty)?.get(id)
    }

    /// Every record of a type, in creation order.
    pub(crate) fn all(&self, ty: &str) -> Vec<&Record> {
        let mut records: Vec<&Record> = self
            .resources
            .get(ty)
            .map(|m| m.values().collect())
            .unwrap_or_default();
        records.sort_by_key(|r| r.seq);
        records
    }

    /// The deleted resource `ty/id`, if it was deleted (and not created again since).
    pub(crate) fn deleted(&self, ty: &str, id: &str) -> Option<&Record> {
        self.deleted.get(ty)?.get(id)
    }

    /// Stores a new resource under a fresh id, or under `id` (seed data, an update that
    /// creates). A deleted resource created again keeps its history: its versions go on
    /// from the last one.
    pub(crate) fn create(
        &mut self,
        ty: &str,
        id: Option<&str>,
        resource: Json,
        hidden: Json,
        via_api: bool,
    ) -> &Record {
        let id = id
            .map(str::to_owned)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let seq = self.next_seq;
        self.next_seq += 1;
        if via_api {
            *self.created.entry(ty.to_owned()).or_default() += 1;
        }
        let mut versions = self
            .deleted
            .get_mut(ty)
            .and_then(|m| m.remove(&id))
            .map(|old| old.versions)
            .unwrap_or_default();
        let vid = versions.last().map_or(1, |v| v.vid + 1);
        versions.push(stamp(ty, &id, vid, resource));
        let record = Record {
            id: id.clone(),
            seq,
            created_via_api: via_api,
            hidden,
            versions,
        };
        let map = self.resources.entry(ty.to_owned()).or_default();
        map.insert(id.clone(), record);
        &map[&id]
    }

    /// Stores a new version of an existing resource; `None` when there is no such resource.
    pub(crate) fn update(
        &mut self,
        ty: &str,
        id: &str,
        resource: Json,
        hidden: Json,
    ) -> Option<&Record> {
        let record = self.resources.get_mut(ty)?.get_mut(id)?;
        let vid = record.current().vid + 1;
        record.versions.push(stamp(ty, id, vid, resource));
        record.hidden = hidden;
        Some(record)
    }

    /// Deletes a resource, keeping it (with its history) among the deleted; false when
    /// there is no such resource.
    pub(crate) fn delete(&mut self, ty: &str, id: &str) -> bool {
        let Some(record) = self.resources.get_mut(ty).and_then(|m| m.remove(id)) else {
            return false;
        };
        self.deleted
            .entry(ty.to_owned())
            .or_default()
            .insert(id.to_owned(), record);
        true
    }

    pub(crate) fn stats(&self) -> Stats {
        let mut created = self.created.clone();
        for ty in ["Practitioner", "Appointment"] {
            created.entry(ty.to_owned()).or_default();
        }
        let appointments_not_cancelled = self
            .all("Appointment")
            .into_iter()
            .filter(|r| r.created_via_api)
            .filter(|r| r.body().get("status").and_then(Value::as_str) != Some("cancelled"))
            .count() as u64;
        Stats {
            created,
            appointments_not_cancelled,
        }
    }
}

/// Puts `resourceType`, `id` and `meta` first, as a server serves them.
fn stamp(ty: &str, id: &str, vid: u64, resource: Json) -> Version {
    let last_updated = Timestamp::now();
    let mut out = Json::new();
    out.insert("resourceType".into(), Value::String(ty.to_owned()));
    out.insert("id".into(), Value::String(id.to_owned()));
    let mut meta = Json::new();
    meta.insert("versionId".into(), Value::String(vid.to_string()));
    meta.insert(
        "lastUpdated".into(),
        Value::String(crate::sandbox::core::instant(last_updated)),
    );
    out.insert("meta".into(), Value::Object(meta));
    for (k, v) in resource {
        if !matches!(k.as_str(), "resourceType" | "id" | "meta") {
            out.insert(k, v);
        }
    }
    Version {
        vid,
        last_updated,
        resource: Value::Object(out),
    }
}
