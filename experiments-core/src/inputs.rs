//! Call inputs: an ordered attribute map (Python's `**kwargs`) and the `User` helper.

use std::borrow::Cow;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::sync::Arc;

use rustc_hash::FxHasher;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::EvalError;
use crate::py;

/// The FxHash of a key (shared by [`Inputs`] and the config index).
pub(crate) fn key_hash(key: &str) -> u64 {
    let mut h = FxHasher::default();
    h.write(key.as_bytes());
    h.finish()
}

/// An attribute name known ahead of time (from the config), with its hash precomputed so
/// that looking it up in [`Inputs`] compares integers before strings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Key {
    text: Box<str>,
    hash: u64,
}

impl Key {
    pub(crate) fn new(text: &str) -> Self {
        Key { text: text.into(), hash: key_hash(text) }
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }
}

impl std::ops::Deref for Key {
    type Target = str;
    fn deref(&self) -> &str {
        &self.text
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// One attribute: its key's hash, the key, the value.
#[derive(Clone, Debug, PartialEq)]
struct Entry {
    hash: u64,
    key: String,
    value: Value,
}

/// Input maps with more attributes than this get an [`Index`]; below, a scan of the
/// precomputed key hashes is faster than any table.
const INDEX_FROM: usize = 16;

/// Hash tables over the entries of a large input map, so that building one with `n` keys
/// costs O(n) and each lookup O(1) instead of a scan.
///
/// Both are open-addressing tables (linear probing, at most half full) of `entry index + 1`
/// (`0`: free slot), hashed with SipHash under keys drawn for this index, so that no set of
/// input keys can be chosen to collide.
#[derive(Clone, Debug)]
struct Index {
    state: RandomState,
    /// Every key, by its exact text.
    exact: Vec<u32>,
    /// Every distinct lower-cased form of the keys, pointing at the *last* entry whose key
    /// lower-cases to it (`{k.lower(): v for k, v in kwargs.items()}` keeps the last).
    lowered: Vec<u32>,
}

impl Index {
    /// An index of `entries` with room for twice as many.
    fn build(entries: &[Entry]) -> Box<Index> {
        let size = (entries.len() * 4).next_power_of_two().max(64);
        let mut index = Box::new(Index {
            state: RandomState::new(),
            exact: vec![0; size],
            lowered: vec![0; size],
        });
        for i in 0..entries.len() {
            index.add(entries, i);
        }
        index
    }

    /// The slot of `text` in `table`: the one holding an entry that `matches`, else the
    /// free slot where it would go.
    fn probe(
        &self,
        table: &[u32],
        text: &str,
        matches: impl Fn(usize) -> bool,
    ) -> (usize, Option<usize>) {
        let mask = table.len() - 1;
        let mut slot = self.state.hash_one(text) as usize & mask;
        loop {
            match table[slot].checked_sub(1) {
                None => return (slot, None),
                Some(i) if matches(i as usize) => return (slot, Some(i as usize)),
                Some(_) => slot = (slot + 1) & mask,
            }
        }
    }

    /// Adds entry `i`, the last one (its key is not in the index yet).
    fn add(&mut self, entries: &[Entry], i: usize) {
        let key = &entries[i].key;
        let (slot, _) = self.probe(&self.exact, key, |_| false);
        self.exact[slot] = i as u32 + 1;
        let lowered = if py::is_lowercase_fixed_point(key) {
            Cow::Borrowed(key.as_str())
        } else {
            Cow::Owned(py::lower(key))
        };
        let (slot, _) =
            self.probe(&self.lowered, &lowered, |j| py::lower_eq(&entries[j].key, &lowered));
        // A later entry replaces an earlier one with the same lower-cased form.
        self.lowered[slot] = i as u32 + 1;
    }

    /// The entry whose key is exactly `key` (with FxHash `hash`).
    fn find(&self, entries: &[Entry], key: &str, hash: u64) -> Option<usize> {
        self.probe(&self.exact, key, |i| {
            entries[i].hash == hash && py::str_eq(&entries[i].key, key)
        })
        .1
    }

    /// The last entry whose key lower-cases to `target`.
    fn find_lowered(&self, entries: &[Entry], target: &str) -> Option<usize> {
        self.probe(&self.lowered, target, |i| py::lower_eq(&entries[i].key, target)).1
    }
}

/// The attributes of one `variant`/`expose` call, in insertion order.
///
/// This is baseplate's `**kwargs`: keys are unique (inserting an existing key replaces its
/// value and keeps its position, like a Python `dict`), and **order matters**: when two keys
/// differ only in case (`User_ID`, `user_id`), the later one wins wherever baseplate
/// lower-cases keys, and events echo the inputs in this order.
///
/// Small maps (the usual handful of attributes) are a vector scanned by precomputed key
/// hashes, allocating nothing beyond it. Past 16 attributes, hash indexes make each insertion
/// and lookup O(1), so building a map of `n` keys costs O(n) whatever `n` is.
///
/// ```
/// use experiments_core::Inputs;
/// let inputs = Inputs::new()
///     .with("user_id", "t2_1")
///     .with("logged_in", true)
///     .with("num_votes", 7);
/// assert_eq!(inputs.get("num_votes"), Some(&serde_json::json!(7)));
/// ```
///
/// Cloning is cheap: the attributes are shared (copy-on-write), so every event of a request
/// can keep the inputs it was logged with without copying them; the first change to a
/// shared map copies it once.
#[derive(Clone, Debug, Default)]
pub struct Inputs {
    map: Arc<Map>,
}

/// The attributes behind an [`Inputs`]: a vector in insertion order plus, past
/// [`INDEX_FROM`] entries, hash indexes.
///
/// Aligned to 128 bytes so that, inside the `Arc`, the reference counts do not share a cache
/// line (or an adjacent-line prefetch pair) with the attributes: the request path clones the
/// `Arc` for every event kept while the event pipeline reads the attributes on another core.
#[derive(Clone, Debug, Default)]
#[repr(align(128))]
struct Map {
    entries: Vec<Entry>,
    /// How many keys are not their own lower-case form (`User_ID`). While zero, a
    /// lower-cased lookup is an exact lookup.
    mixed_case_keys: usize,
    /// Built once the map has had more than [`INDEX_FROM`] entries (kept from then on, even
    /// across [`Inputs::clear`]); it always indexes every entry.
    index: Option<Box<Index>>,
}

impl Map {
    /// An empty input map with room for `capacity` attributes.
    fn with_capacity(capacity: usize) -> Self {
        Map { entries: Vec::with_capacity(capacity), mixed_case_keys: 0, index: None }
    }

    /// Sets `key` to `value`. An existing key keeps its position; its old value is returned.
    fn insert(&mut self, key: String, value: Value) -> Option<Value> {
        let hash = key_hash(&key);
        match self.position(&key, hash) {
            Some(i) => Some(std::mem::replace(&mut self.entries[i].value, value)),
            None => {
                self.push_new(hash, key, value);
                None
            }
        }
    }

    /// Appends an attribute whose key is known not to be present.
    fn push_new(&mut self, hash: u64, key: String, value: Value) {
        self.mixed_case_keys += usize::from(!py::is_lowercase_fixed_point(&key));
        self.entries.push(Entry { hash, key, value });
        let n = self.entries.len();
        match &mut self.index {
            Some(index) if n * 2 <= index.exact.len() => index.add(&self.entries, n - 1),
            Some(_) => self.index = Some(Index::build(&self.entries)),
            None if n > INDEX_FROM => self.index = Some(Index::build(&self.entries)),
            None => {}
        }
    }

    /// Removes `key`, keeping the order of the others. Costs O(n) (the later entries move
    /// up, and a large map's index is rebuilt).
    fn remove(&mut self, key: &str) -> Option<Value> {
        let pos = self.position(key, key_hash(key))?;
        let e = self.entries.remove(pos);
        self.mixed_case_keys -= usize::from(!py::is_lowercase_fixed_point(&e.key));
        if self.index.is_some() {
            self.index = Some(Index::build(&self.entries));
        }
        Some(e.value)
    }

    /// The value of exactly `key` (case-sensitive), like `kwargs.get(key)`.
    fn get(&self, key: &str) -> Option<&Value> {
        self.position(key, key_hash(key)).map(|i| &self.entries[i].value)
    }

    fn position(&self, key: &str, hash: u64) -> Option<usize> {
        match &self.index {
            Some(index) => index.find(&self.entries, key, hash),
            None => self.entries.iter().position(|e| e.hash == hash && py::str_eq(&e.key, key)),
        }
    }

    /// [`Inputs::get`] for a key known ahead of time.
    fn get_key(&self, key: &Key) -> Option<&Value> {
        self.position(&key.text, key.hash).map(|i| &self.entries[i].value)
    }

    /// Mutable access to the value of exactly `key`, to update inputs in place (reusing
    /// their allocations) from one call to the next.
    fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        let i = self.position(key, key_hash(key))?;
        Some(&mut self.entries[i].value)
    }

    /// Removes every attribute, keeping the allocation for reuse.
    fn clear(&mut self) {
        self.entries.clear();
        self.mixed_case_keys = 0;
        if let Some(index) = &mut self.index {
            // An index of no entries: kept, so refilling a large map does not reallocate it.
            index.exact.fill(0);
            index.lowered.fill(0);
        }
    }

    /// The value of the key that wins in `{k.lower(): v for k, v in kwargs.items()}` for
    /// the lower-case key `target`: the last key whose lower-case form equals it.
    fn get_lowered(&self, target: &Key) -> Option<&Value> {
        if self.mixed_case_keys == 0 {
            // Every key is lower-case and keys are unique: only an exact match can win.
            return self.get_key(target);
        }
        let i = match &self.index {
            Some(index) => index.find_lowered(&self.entries, target)?,
            None => self.entries.iter().rposition(|e| py::lower_eq(&e.key, target))?,
        };
        Some(&self.entries[i].value)
    }
}

impl Inputs {
    /// An empty input map.
    pub fn new() -> Self {
        Inputs::default()
    }

    /// An empty input map with room for `capacity` attributes.
    pub fn with_capacity(capacity: usize) -> Self {
        Inputs { map: Arc::new(Map::with_capacity(capacity)) }
    }

    /// The map, to change: copied first if another `Inputs` shares it.
    fn map_mut(&mut self) -> &mut Map {
        Arc::make_mut(&mut self.map)
    }

    /// Builder form of [`Inputs::insert`].
    #[must_use]
    pub fn with(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.insert(key, value);
        self
    }

    /// Sets `key` to `value`. An existing key keeps its position; its old value is returned.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<Value>) -> Option<Value> {
        self.map_mut().insert(key.into(), value.into())
    }

    /// Removes `key`, keeping the order of the others. Costs O(n) (the later entries move
    /// up, and a large map's index is rebuilt).
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.map_mut().remove(key)
    }

    /// The value of exactly `key` (case-sensitive), like `kwargs.get(key)`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.map.get(key)
    }

    /// [`Inputs::get`], with `null` for a missing key (`kwargs.get(key)` in Python).
    pub fn get_or_null(&self, key: &str) -> &Value {
        const NULL: Value = Value::Null;
        self.get(key).unwrap_or(&NULL)
    }

    /// [`Inputs::get`] for a key known ahead of time.
    pub(crate) fn get_key(&self, key: &Key) -> Option<&Value> {
        self.map.get_key(key)
    }

    /// Mutable access to the value of exactly `key`, to update inputs in place (reusing
    /// their allocations) from one call to the next.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.map_mut().get_mut(key)
    }

    /// The attributes in order, with mutable values (to refill a reused input map).
    pub fn iter_mut(&mut self) -> impl ExactSizeIterator<Item = (&str, &mut Value)> {
        self.map_mut().entries.iter_mut().map(|e| (e.key.as_str(), &mut e.value))
    }

    /// The attributes in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &Value)> {
        self.map.entries.iter().map(|e| (e.key.as_str(), &e.value))
    }

    /// Number of attributes.
    pub fn len(&self) -> usize {
        self.map.entries.len()
    }

    /// Whether there are no attributes.
    pub fn is_empty(&self) -> bool {
        self.map.entries.is_empty()
    }

    /// Removes every attribute, keeping the allocation for reuse (a map shared with an
    /// event is left to it, and this one starts afresh with the same capacity).
    pub fn clear(&mut self) {
        match Arc::get_mut(&mut self.map) {
            Some(map) => map.clear(),
            None => self.map = Arc::new(Map::with_capacity(self.map.entries.capacity())),
        }
    }

    /// Merges the user's event fields (`user_id`, `logged_in`, `cookie_created_timestamp`)
    /// into the inputs, like baseplate's `inputs.update(user.event_fields())`.
    pub fn merge_user(&mut self, user: &User) {
        self.insert("user_id", user.user_id.clone().map_or(Value::Null, Value::String));
        self.insert("logged_in", user.logged_in);
        self.insert(
            "cookie_created_timestamp",
            user.cookie_created_timestamp.map_or(Value::Null, Value::from),
        );
    }

    /// The value of the key that wins in `{k.lower(): v for k, v in kwargs.items()}` for
    /// the lower-case key `target`: the last key whose lower-case form equals it.
    pub(crate) fn get_lowered(&self, target: &Key) -> Option<&Value> {
        self.map.get_lowered(target)
    }

    /// `Err(RecursionLimit)` when a value nests deeper than [`crate::MAX_DEPTH`]: an event
    /// echoing these inputs would make every sink that copies or serializes them recurse
    /// that deep. Allocation-free; a scalar costs one comparison.
    pub(crate) fn check_depth(&self) -> Result<(), EvalError> {
        self.map.entries.iter().try_for_each(|e| py::check_depth(&e.value))
    }

    /// Whether `self` and `other` share their attributes (a clone not changed since).
    pub fn shares_with(&self, other: &Inputs) -> bool {
        Arc::ptr_eq(&self.map, &other.map)
    }
}

impl PartialEq for Inputs {
    fn eq(&self, other: &Self) -> bool {
        self.map.entries == other.map.entries
    }
}

impl<K: Into<String>, V: Into<Value>> FromIterator<(K, V)> for Inputs {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut inputs = Inputs::new();
        for (k, v) in iter {
            inputs.insert(k, v);
        }
        inputs
    }
}

impl From<serde_json::Map<String, Value>> for Inputs {
    /// The object's members in order. Its keys are unique, so none is looked up: O(n).
    fn from(map: serde_json::Map<String, Value>) -> Self {
        let mut inputs = Map::with_capacity(map.len());
        for (key, value) in map {
            inputs.push_new(key_hash(&key), key, value);
        }
        Inputs { map: Arc::new(inputs) }
    }
}

impl Serialize for Inputs {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Inputs {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        serde_json::Map::<String, Value>::deserialize(deserializer).map(Inputs::from)
    }
}

/// The request's user, as baseplate's `User.event_fields()` describes it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The account id (`t2_...`) when logged in, else the logged-out id (LoID).
    pub user_id: Option<String>,
    /// Whether the user is logged in.
    pub logged_in: bool,
    /// When the LoID cookie was created, in epoch milliseconds.
    pub cookie_created_timestamp: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn clones_share_until_one_changes() {
        let mut a = Inputs::new().with("user_id", "t2_1").with("n", 1);
        let b = a.clone();
        assert!(a.shares_with(&b), "a clone copies nothing");
        a.insert("n", 2);
        assert!(!a.shares_with(&b));
        assert_eq!((a.get("n"), b.get("n")), (Some(&Value::from(2)), Some(&Value::from(1))));
        let mut c = b.clone();
        c.clear();
        assert!(c.is_empty());
        assert_eq!(b.len(), 2, "clearing a shared map leaves the other one whole");
        let mut d = b.clone();
        for (_, v) in d.iter_mut() {
            *v = Value::Null;
        }
        assert_eq!(b.get("user_id"), Some(&Value::from("t2_1")));
        assert_eq!(d.get("user_id"), Some(&Value::Null));
    }

    #[test]
    fn insert_replaces_in_place() {
        let mut inputs = Inputs::new().with("a", 1).with("b", 2);
        assert_eq!(inputs.insert("a", 3), Some(json!(1)));
        let keys: Vec<_> = inputs.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["a", "b"]);
        assert_eq!(inputs.get("a"), Some(&json!(3)));
    }

    #[test]
    fn lowered_lookup_takes_the_last_key() {
        let inputs = Inputs::new().with("user_id", "first").with("User_ID", "second");
        assert_eq!(inputs.get_lowered(&Key::new("user_id")), Some(&json!("second")));
        assert_eq!(inputs.get("User_ID"), Some(&json!("second")));
    }

    #[test]
    fn user_fields_merge_like_event_fields() {
        let mut inputs = Inputs::new().with("logged_in", false).with("x", 1);
        inputs.merge_user(&User {
            user_id: Some("t2_1".into()),
            logged_in: true,
            cookie_created_timestamp: None,
        });
        let got: Vec<_> = inputs.iter().map(|(k, v)| (k.to_owned(), v.clone())).collect();
        assert_eq!(
            got,
            vec![
                ("logged_in".to_owned(), json!(true)),
                ("x".to_owned(), json!(1)),
                ("user_id".to_owned(), json!("t2_1")),
                ("cookie_created_timestamp".to_owned(), json!(null)),
            ]
        );
    }

    #[test]
    fn serde_round_trip_keeps_order() {
        let inputs: Inputs = serde_json::from_str(r#"{"z":1,"a":[true,null]}"#).unwrap();
        assert_eq!(serde_json::to_string(&inputs).unwrap(), r#"{"z":1,"a":[true,null]}"#);
    }
}
