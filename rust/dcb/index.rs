//! The in-memory DCB event log and its type and tag indexes (no Python here).
//!
//! Positions start at 1 and equal the index in `events` plus one. Every type
//! and every tag has the ascending list of the positions of its events, so a
//! query reads the shortest list that can answer it instead of every event.

use std::collections::HashMap;
use std::sync::Arc;

/// An event as appended: its type, tags (in the caller's order) and data.
pub struct NewEvent {
    pub type_: String,
    pub tags: Vec<String>,
    pub data: Vec<u8>,
}

/// One query item: matches an event whose type is among `types` (or
/// `types` is empty) and whose tags include every one of `tags`.
#[derive(Clone, Debug, Default)]
pub struct Item {
    pub types: Vec<String>,
    pub tags: Vec<String>,
}

/// A recorded event, with its type and tags as interned ids.
struct Event {
    type_id: u32,
    tag_ids: Box<[u32]>,
    data: Arc<[u8]>,
}

/// A recorded event copied out of the store, ready to become Python objects.
pub struct Found {
    pub position: u64,
    pub type_: Arc<str>,
    pub tags: Vec<Arc<str>>,
    pub data: Arc<[u8]>,
}

/// Strings to dense ids, and back.
#[derive(Default)]
struct Interner {
    ids: HashMap<Arc<str>, u32>,
    names: Vec<Arc<str>>,
}

impl Interner {
    fn get(&self, name: &str) -> Option<u32> {
        self.ids.get(name).copied()
    }

    fn intern(&mut self, name: &str) -> u32 {
        if let Some(id) = self.get(name) {
            return id;
        }
        let id = u32::try_from(self.names.len()).expect("fewer than 2^32 distinct names");
        let name: Arc<str> = name.into();
        self.names.push(name.clone());
        self.ids.insert(name, id);
        id
    }
}

/// Where one query item finds its candidate positions.
enum Source<'a> {
    /// Every position in `next..=last` (an item with no types and no tags).
    All { next: u64, last: u64 },
    /// The positions of one index list, each checked against the item when
    /// `check` is set (the list is one tag's; the other tags and the types
    /// still have to be compared).
    List {
        list: &'a [u64],
        check: Option<Check>,
    },
}

/// What an event from a tag's list must also have to match the item.
struct Check {
    types: Vec<u32>,
    tags: Vec<u32>,
}

/// The DCB event log with its indexes.
#[derive(Default)]
pub struct Store {
    events: Vec<Event>,
    types: Interner,
    tags: Interner,
    by_type: Vec<Vec<u64>>,
    by_tag: Vec<Vec<u64>>,
    /// Positions looked at by queries so far (shows that reads do not scan).
    visited: u64,
}

impl Store {
    /// The last position, 0 when empty.
    pub fn head(&self) -> u64 {
        self.events.len() as u64
    }

    /// How many positions queries have looked at since the store was made.
    pub fn visited(&self) -> u64 {
        self.visited
    }

    /// Appends events; returns the position of the last one.
    pub fn append(&mut self, events: Vec<NewEvent>) -> u64 {
        for event in events {
            let position = self.head() + 1;
            let type_id = self.types.intern(&event.type_);
            if self.by_type.len() <= type_id as usize {
                self.by_type.push(Vec::new());
            }
            self.by_type[type_id as usize].push(position);
            let tag_ids: Box<[u32]> = event.tags.iter().map(|t| self.tags.intern(t)).collect();
            for (i, &tag_id) in tag_ids.iter().enumerate() {
                // A tag given twice is indexed once.
                if tag_ids[..i].contains(&tag_id) {
                    continue;
                }
                if self.by_tag.len() <= tag_id as usize {
                    self.by_tag.push(Vec::new());
                }
                self.by_tag[tag_id as usize].push(position);
            }
            self.events.push(Event {
                type_id,
                tag_ids,
                data: event.data.into(),
            });
        }
        self.head()
    }

    /// The positions after `after` of events matching `query` (all events if
    /// it has no items), ascending, at most `limit` of them.
    pub fn select(&mut self, query: &[Item], after: u64, limit: usize) -> Vec<u64> {
        let mut out = Vec::new();
        if limit == 0 || after >= self.head() {
            return out;
        }
        let all = [Item::default()];
        let items = if query.is_empty() { &all[..] } else { query };
        let mut sources: Vec<Source<'_>> = Vec::new();
        for item in items {
            self.sources(item, after, &mut sources);
        }
        // Merge the sources' ascending positions, each position once.
        let mut heads: Vec<Option<u64>> = Vec::with_capacity(sources.len());
        let mut visited = 0;
        for source in &mut sources {
            heads.push(next_match(source, &self.events, &mut visited));
        }
        while out.len() < limit {
            let Some(min) = heads.iter().flatten().min().copied() else {
                break;
            };
            out.push(min);
            if out.len() == limit {
                break; // Look no further than needed.
            }
            for (head, source) in heads.iter_mut().zip(&mut sources) {
                if *head == Some(min) {
                    *head = next_match(source, &self.events, &mut visited);
                }
            }
        }
        self.visited += visited;
        out
    }

    /// Copies the events at the given positions out of the store.
    pub fn found(&self, positions: &[u64]) -> Vec<Found> {
        positions
            .iter()
            .map(|&position| {
                let event = &self.events[(position - 1) as usize];
                Found {
                    position,
                    type_: self.types.names[event.type_id as usize].clone(),
                    tags: event
                        .tag_ids
                        .iter()
                        .map(|&t| self.tags.names[t as usize].clone())
                        .collect(),
                    data: event.data.clone(),
                }
            })
            .collect()
    }

    /// Adds the sources that find the positions after `after` matching `item`.
    fn sources<'a>(&'a self, item: &Item, after: u64, sources: &mut Vec<Source<'a>>) {
        let after_in = |list: &'a [u64]| &list[list.partition_point(|&p| p <= after)..];
        let mut types: Vec<u32> = item
            .types
            .iter()
            .filter_map(|t| self.types.get(t))
            .collect();
        types.sort_unstable();
        types.dedup();
        if !item.types.is_empty() && types.is_empty() {
            return; // None of the item's types has been recorded.
        }
        if item.tags.is_empty() {
            if types.is_empty() {
                sources.push(Source::All {
                    next: after + 1,
                    last: self.head(),
                });
            } else {
                for &t in &types {
                    sources.push(Source::List {
                        list: after_in(&self.by_type[t as usize]),
                        check: None,
                    });
                }
            }
            return;
        }
        let mut tags = Vec::with_capacity(item.tags.len());
        for tag in &item.tags {
            match self.tags.get(tag) {
                Some(id) => tags.push(id),
                None => return, // No event has this tag.
            }
        }
        tags.sort_unstable();
        tags.dedup();
        // Walk the tag with the fewest positions left; check the rest.
        let (shortest, _) = tags
            .iter()
            .enumerate()
            .map(|(i, &t)| (i, after_in(&self.by_tag[t as usize]).len()))
            .min_by_key(|&(_, len)| len)
            .expect("the item has tags");
        let driver = tags.swap_remove(shortest);
        let list = after_in(&self.by_tag[driver as usize]);
        let check = (!tags.is_empty() || !types.is_empty()).then_some(Check { types, tags });
        sources.push(Source::List { list, check });
    }
}

/// The next position of `source` whose event matches, counting what it looks at.
fn next_match(source: &mut Source<'_>, events: &[Event], visited: &mut u64) -> Option<u64> {
    match source {
        Source::All { next, last } => {
            if *next > *last {
                return None;
            }
            *visited += 1;
            *next += 1;
            Some(*next - 1)
        }
        Source::List { list, check } => {
            while let Some((&position, rest)) = list.split_first() {
                *list = rest;
                *visited += 1;
                let Some(check) = check else {
                    return Some(position);
                };
                let event = &events[(position - 1) as usize];
                if (check.types.is_empty() || check.types.contains(&event.type_id))
                    && check.tags.iter().all(|t| event.tag_ids.contains(t))
                {
                    return Some(position);
                }
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(type_: &str, tags: &[&str]) -> NewEvent {
        NewEvent {
            type_: type_.into(),
            tags: tags.iter().map(|&t| t.into()).collect(),
            data: type_.as_bytes().to_vec(),
        }
    }

    fn item(types: &[&str], tags: &[&str]) -> Item {
        Item {
            types: types.iter().map(|&t| t.into()).collect(),
            tags: tags.iter().map(|&t| t.into()).collect(),
        }
    }

    fn store() -> Store {
        let mut store = Store::default();
        store.append(vec![
            event("a", &["x"]),
            event("b", &["x", "y"]),
            event("c", &["y", "y"]),
            event("a", &[]),
        ]);
        store
    }

    #[test]
    fn matches_types_and_all_tags() {
        let mut s = store();
        assert_eq!(s.select(&[], 0, usize::MAX), vec![1, 2, 3, 4]);
        assert_eq!(s.select(&[item(&["a"], &[])], 0, usize::MAX), vec![1, 4]);
        assert_eq!(s.select(&[item(&[], &["x", "y"])], 0, usize::MAX), vec![2]);
        assert_eq!(s.select(&[item(&[], &["y"])], 0, usize::MAX), vec![2, 3]);
        assert_eq!(s.select(&[item(&["c", "b"], &["y"])], 2, 9), vec![3]);
        assert_eq!(s.select(&[item(&["zz"], &[])], 0, 9), Vec::<u64>::new());
        assert_eq!(s.select(&[item(&[], &["zz"])], 0, 9), Vec::<u64>::new());
        assert_eq!(s.select(&[item(&[], &[])], 1, 2), vec![2, 3]);
    }

    #[test]
    fn union_of_items_is_ascending_without_repeats() {
        let mut s = store();
        let query = [item(&[], &["y"]), item(&["a", "b"], &[])];
        assert_eq!(s.select(&query, 0, usize::MAX), vec![1, 2, 3, 4]);
        assert_eq!(s.select(&query, 0, 2), vec![1, 2]);
    }

    #[test]
    fn a_tag_query_visits_only_that_tags_positions() {
        let mut s = Store::default();
        let events = (0..1000)
            .map(|i| event("t", if i % 100 == 0 { &["hot"] } else { &["cold"] }))
            .collect();
        s.append(events);
        let before = s.visited();
        assert_eq!(s.select(&[item(&[], &["hot"])], 0, usize::MAX).len(), 10);
        assert_eq!(s.visited() - before, 10);
    }

    #[test]
    fn found_keeps_tags_in_order() {
        let s = store();
        let found = s.found(&[3]);
        assert_eq!(&*found[0].type_, "c");
        let tags: Vec<&str> = found[0].tags.iter().map(|t| &**t).collect();
        assert_eq!(tags, ["y", "y"]);
        assert_eq!(&*found[0].data, b"c");
    }
}
