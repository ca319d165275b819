//! The classification cache every session shares: classified statement
//! texts by their fingerprint and by their whole text, per dialect. Why
//! here: judging a text is mostly finding its classification, and the
//! cache's locking, hashing and counting are on every statement's path.
//!
//! This module must never serve a classification for a text it was not
//! true of: a fingerprint's entry stands for other texts only when every
//! statement of it is literal-free, and at the text's own spans.

use std::num::NonZeroUsize;
use std::sync::Arc;

use lru::LruCache;

use super::Engine;
use crate::policy::classify::{classify_text, lexer_hazard, StatementRisk};
use crate::policy::fingerprint::{self, Fingerprint};
use crate::policy::parse::SqlDialect;

/// Texts longer than this are classified every time: the cache bounds
/// its memory by entries, and long texts are rarely repeated.
pub(super) const MAX_CACHED_TEXT: usize = 4096;

/// Classified statement texts (one per dialect: the same text reads
/// differently in each). A text is looked up by its fingerprint first
/// when the fingerprint is exact (`policy::fingerprint`): texts that
/// differ only in literal values share one classification, so a new
/// literal is not a new parse. Classifications that depend on a literal
/// value (`StatementRisk::literal_free`) are kept by their whole text.
pub(super) struct Classified {
    /// By exact fingerprint.
    shapes: LruCache<Box<str>, ByShape, CacheHasher>,
    /// By text: inexact fingerprints, and literal-sensitive statements.
    texts: LruCache<Box<[u8]>, Arc<[StatementRisk]>, CacheHasher>,
    /// Texts served by fingerprint, by text, and classified: counted
    /// under the cache's lock, which each text takes anyway (a counter of
    /// their own would move between the CPUs at every statement).
    counts: [u64; 3],
}

/// The caches' hasher: seeded per process (texts are the clients' to
/// shape; `quality`, foldhash's stronger mix, for that), and cheaper than
/// SipHash on every statement's text and fingerprint. The caches are
/// bounded, and their users authenticated.
type CacheHasher = foldhash::quality::RandomState;

/// What a fingerprint's entry says.
#[derive(Clone)]
enum ByShape {
    /// Every text of this fingerprint has these statements (at its own
    /// spans).
    Shared(Arc<[StatementRisk]>),
    /// Some statement depends on a literal value: look the text up.
    ByText,
}

impl std::fmt::Debug for Classified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Classified")
            .field("shapes", &self.shapes.len())
            .field("texts", &self.texts.len())
            .finish()
    }
}

impl Classified {
    /// An empty cache of `cap` texts and `cap` fingerprints.
    pub(super) fn new(cap: NonZeroUsize) -> Self {
        Classified {
            shapes: LruCache::with_hasher(cap, CacheHasher::default()),
            texts: LruCache::with_hasher(cap, CacheHasher::default()),
            counts: [0; 3],
        }
    }
}

/// How the classification cache served texts, since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheCounts {
    /// Served by a fingerprint another text was classified under, or by
    /// a shape with literals the session remembered (`memo.rs`; counted
    /// 64 at a time and when the session ends).
    pub by_fingerprint: u64,
    /// Served by the same text seen before (in the cache, or remembered
    /// by the session, as a text without literals is).
    pub by_text: u64,
    /// Split, parsed and classified.
    pub classified: u64,
}

impl Engine {
    /// How the classification cache served texts so far.
    pub fn cache_counts(&self) -> CacheCounts {
        let mut counts = [0; 3];
        for cache in &self.cache {
            let cache = cache.lock().unwrap_or_else(|e| e.into_inner());
            for (sum, n) in counts.iter_mut().zip(cache.counts) {
                *sum += n;
            }
        }
        let [by_fingerprint, by_text, classified] = counts;
        CacheCounts {
            by_fingerprint,
            by_text,
            classified,
        }
    }

    /// The statements of a text, classified (from the cache when a text
    /// of its fingerprint, or the text itself, was seen).
    pub fn classify(&self, dialect: SqlDialect, sql: &[u8]) -> Arc<[StatementRisk]> {
        self.classify_shaped(dialect, sql).0
    }

    /// Counts texts served outside the cache by a session's own shapes
    /// (`memo.rs`): by a shape with literals, and by a text kept whole.
    pub(super) fn count_recalled(&self, dialect: SqlDialect, [by_fingerprint, by_text]: [u64; 2]) {
        let mut cache = self.cache[dialect as usize]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        cache.counts[0] += by_fingerprint;
        cache.counts[1] += by_text;
    }

    /// [`Engine::classify`], and the text's fingerprint when the
    /// classification stands for every text of it (the fingerprint is
    /// exact and each statement literal-free).
    pub(super) fn classify_shaped(
        &self,
        dialect: SqlDialect,
        sql: &[u8],
    ) -> (Arc<[StatementRisk]>, Option<Fingerprint>) {
        let cache = &self.cache[dialect as usize];
        let lock = || cache.lock().unwrap_or_else(|e| e.into_inner());
        if sql.len() > MAX_CACHED_TEXT {
            lock().counts[2] += 1;
            return (classify_text(dialect, sql).into(), None);
        }
        // The text itself first: repeated texts (prepared statements,
        // BEGIN) need no fingerprint.
        {
            let mut cache = lock();
            if let Some(hit) = cache.texts.get(sql).cloned() {
                cache.counts[1] += 1;
                return (hit, None);
            }
        }
        let mut misplaced = false;
        let shape = std::str::from_utf8(sql)
            .ok()
            .filter(|text| lexer_hazard(dialect, text).is_none())
            .map(|text| fingerprint::of(dialect, text))
            .filter(|f| f.exact);
        if let Some(f) = shape {
            // (Bound first: a guard in the match would live through it.)
            let found = {
                let mut cache = lock();
                let found = cache.shapes.get(f.key.as_str()).cloned();
                match &found {
                    // (Taken back below in the case `placed` refuses.)
                    Some(ByShape::Shared(_)) => cache.counts[0] += 1,
                    Some(ByShape::ByText) => {}
                    None => cache.counts[2] += 1,
                }
                found
            };
            match found {
                Some(ByShape::Shared(statements)) => {
                    if let Some(placed) = placed(&statements, &f) {
                        return (placed, Some(f));
                    }
                    misplaced = true;
                }
                Some(ByShape::ByText) => {}
                None => {
                    let classified: Arc<[StatementRisk]> = classify_text(dialect, sql).into();
                    let shared = classified.len() == f.statements.len()
                        && classified.iter().all(|s| s.literal_free);
                    let mut cache = lock();
                    let entry = if shared {
                        ByShape::Shared(classified.clone())
                    } else {
                        ByShape::ByText
                    };
                    cache.shapes.put(f.key.as_str().into(), entry);
                    cache.texts.put(sql.into(), classified.clone());
                    return (classified, shared.then_some(f));
                }
            }
        }
        let classified: Arc<[StatementRisk]> = classify_text(dialect, sql).into();
        let mut cache = lock();
        cache.counts[2] += 1;
        if misplaced {
            // Counted as served by its fingerprint above: it was not.
            cache.counts[0] -= 1;
        }
        cache.texts.put(sql.into(), classified.clone());
        (classified, None)
    }
}

/// A fingerprint's shared statements at the spans of this text (`None`:
/// the text has another number of statements, which an exact fingerprint
/// never allows).
pub(super) fn placed(
    shared: &Arc<[StatementRisk]>,
    text: &Fingerprint,
) -> Option<Arc<[StatementRisk]>> {
    if shared.len() != text.statements.len() {
        return None;
    }
    let same = shared
        .iter()
        .zip(&text.statements)
        .all(|(s, at)| s.start == at.start && s.end == at.end && s.bytes == at.bytes);
    if same {
        return Some(shared.clone());
    }
    Some(
        shared
            .iter()
            .zip(&text.statements)
            .map(|(s, at)| StatementRisk {
                start: at.start,
                end: at.end,
                bytes: at.bytes.clone(),
                ..s.clone()
            })
            .collect(),
    )
}
