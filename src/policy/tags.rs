//! The risk tag tree. Tags are dotted paths (`write.delete`); a rule that
//! names a node (`write`) covers every tag below it. The classifier only
//! ever emits leaves; rules may name leaves or inner nodes.

use std::fmt;

macro_rules! tags {
    ($($variant:ident = $name:literal,)*) => {
        /// A leaf of the risk tag tree.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum Tag { $(#[doc = $name] $variant,)* }

        impl Tag {
            /// Every tag, in a fixed order.
            pub const ALL: &'static [Tag] = &[$(Tag::$variant,)*];

            /// The dotted name, as rules write it.
            pub const fn name(self) -> &'static str {
                match self { $(Tag::$variant => $name,)* }
            }
        }
    };
}

tags! {
    Read = "read",
    WriteInsert = "write.insert",
    WriteUpdate = "write.update",
    WriteDelete = "write.delete",
    WriteMerge = "write.merge",
    WriteUpsert = "write.upsert",
    WriteUnbounded = "write.unbounded",
    WriteLock = "write.lock",
    WriteNotify = "write.notify",
    DdlCreate = "ddl.create",
    DdlAlter = "ddl.alter",
    DdlDrop = "ddl.drop",
    DdlTruncate = "ddl.truncate",
    DdlRename = "ddl.rename",
    DdlIndex = "ddl.index",
    DdlBlocking = "ddl.blocking",
    DclGrant = "dcl.grant",
    DclRevoke = "dcl.revoke",
    DclRole = "dcl.role",
    AdminConfig = "admin.config",
    AdminKill = "admin.kill",
    AdminMaintenance = "admin.maintenance",
    AdminSecrets = "admin.secrets",
    FileRead = "file.read",
    FileWrite = "file.write",
    FileProgram = "file.program",
    CodeAnonymous = "code.anonymous",
    CodeCall = "code.call",
    CodeFunction = "code.function",
    Tx = "tx",
    Session = "session",
    Unknown = "unknown",
}

impl Tag {
    /// The tag with this exact leaf name.
    pub fn from_name(name: &str) -> Option<Tag> {
        Tag::ALL.iter().copied().find(|t| t.name() == name)
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A node of the tree as a rule names it: a leaf or an inner node such as
/// `write`. Its specificity is its depth: `write.delete` beats `write`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagPattern {
    name: String,
}

impl TagPattern {
    /// Parses a rule's entry; `None` when no tag is or lies below it.
    pub fn parse(name: &str) -> Option<TagPattern> {
        let pattern = TagPattern {
            name: name.to_owned(),
        };
        Tag::ALL
            .iter()
            .any(|t| pattern.covers(*t))
            .then_some(pattern)
    }

    /// Whether the pattern names this tag or one of its ancestors.
    pub fn covers(&self, tag: Tag) -> bool {
        let leaf = tag.name();
        leaf == self.name
            || (leaf.starts_with(self.name.as_str())
                && leaf.as_bytes().get(self.name.len()) == Some(&b'.'))
    }

    /// Depth in the tree (1 for `write`, 2 for `write.delete`).
    pub fn depth(&self) -> usize {
        self.name.split('.').count()
    }

    /// The name as written.
    pub fn as_str(&self) -> &str {
        &self.name
    }
}

/// A set of tags (a bit set; the tree is small).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct TagSet(u64);

impl TagSet {
    /// The empty set.
    pub const EMPTY: TagSet = TagSet(0);

    /// The set of one tag.
    pub const fn of(tag: Tag) -> TagSet {
        TagSet(1 << tag as u8)
    }

    /// Adds a tag.
    pub fn insert(&mut self, tag: Tag) {
        self.0 |= 1 << tag as u8;
    }

    /// Adds every tag of another set.
    pub fn extend(&mut self, other: TagSet) {
        self.0 |= other.0;
    }

    /// Whether the tag is in the set.
    pub fn contains(self, tag: Tag) -> bool {
        self.0 & (1 << tag as u8) != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether the two sets share a tag.
    pub fn meets(self, other: TagSet) -> bool {
        self.0 & other.0 != 0
    }

    /// Whether every tag of this set is in `other`.
    pub fn within(self, other: TagSet) -> bool {
        self.0 & !other.0 == 0
    }

    /// The tags `keep` takes (one pass over the tree).
    pub fn all_where(keep: impl Fn(Tag) -> bool) -> TagSet {
        let mut set = TagSet::EMPTY;
        for &t in Tag::ALL.iter().filter(|&&t| keep(t)) {
            set.insert(t);
        }
        set
    }

    /// The tags, in the tree's order: its set bits, lowest first (a
    /// tag's bit is its place in [`Tag::ALL`]; a statement has a few
    /// tags of the tree's dozens, and every judged one is iterated).
    pub fn iter(self) -> impl Iterator<Item = Tag> {
        let mut bits = self.0;
        std::iter::from_fn(move || {
            let at = bits.trailing_zeros() as usize;
            bits &= bits.wrapping_sub(1);
            Tag::ALL.get(at).copied()
        })
    }
}

impl FromIterator<Tag> for TagSet {
    fn from_iter<I: IntoIterator<Item = Tag>>(iter: I) -> Self {
        let mut set = TagSet::EMPTY;
        for t in iter {
            set.insert(t);
        }
        set
    }
}

impl fmt::Display for TagSet {
    /// Names sorted alphabetically, space-separated (the corpus format).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&str> = self.iter().map(Tag::name).collect();
        names.sort_unstable();
        f.write_str(&names.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_iterates_its_tags_in_the_trees_order() {
        for (i, t) in Tag::ALL.iter().enumerate() {
            assert_eq!(*t as usize, i, "{t:?}'s bit is its place in ALL");
        }
        let all: TagSet = Tag::ALL.iter().copied().collect();
        assert!(all.iter().eq(Tag::ALL.iter().copied()));
        assert_eq!(TagSet::EMPTY.iter().count(), 0);
        let some: Vec<Tag> = Tag::ALL.iter().copied().step_by(3).collect();
        let set: TagSet = some.iter().rev().copied().collect();
        assert_eq!(set.iter().collect::<Vec<_>>(), some);
    }

    #[test]
    fn patterns_cover_their_subtree_only() {
        let write = TagPattern::parse("write").unwrap();
        assert!(write.covers(Tag::WriteDelete));
        assert!(!write.covers(Tag::Read));
        let drop = TagPattern::parse("ddl.drop").unwrap();
        assert!(drop.covers(Tag::DdlDrop));
        assert!(!drop.covers(Tag::DdlCreate));
        assert!(drop.depth() > TagPattern::parse("ddl").unwrap().depth());
        // A prefix of a name is not an ancestor.
        assert!(TagPattern::parse("wri").is_none());
        assert!(TagPattern::parse("write.nothing").is_none());
        assert!(TagPattern::parse("session").is_some());
    }

    #[test]
    fn sets_display_sorted() {
        let set: TagSet = [Tag::WriteUnbounded, Tag::WriteDelete, Tag::Read]
            .into_iter()
            .collect();
        assert_eq!(set.to_string(), "read write.delete write.unbounded");
    }
}
