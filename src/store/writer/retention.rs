//! Signed checkpoints over the chain's head, and retention: whole
//! sessions ended before `retain_days` pruned, leaving a (signed) anchor
//! the chain verifies from. Neither ever signs or prunes a trail that did
//! not verify when the writer started.

use super::*;

/// How often retention looks for sessions to prune.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

impl Writer {
    /// Prunes whole sessions ended before the retention period, oldest
    /// first, leaving a (signed) anchor where the chain now starts and a
    /// fresh checkpoint over what remains.
    pub(super) fn prune(&mut self) {
        let Some(retain) = self.retain else { return };
        if !self.trusted {
            return;
        }
        if self.pruned_at.is_some_and(|t| t.elapsed() < PRUNE_EVERY) {
            return;
        }
        self.pruned_at = Some(Instant::now());
        // Only a trail that verifies is pruned (and its anchor signed):
        // otherwise the gateway would sign over someone's edit.
        let public = self.signer.as_ref().map(|(k, _)| k.public());
        match crate::store::chain::verify(&mut *self.store, public.as_ref()) {
            Ok(r) if r.broken.is_none() => {}
            Ok(r) => {
                tracing::error!(finding = ?r.broken, "recording: the trail does not verify; retention pruned nothing");
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, "recording: retention could not verify the trail");
                return;
            }
        }
        let cutoff = now_us() - retain.as_micros() as i64;
        let link = match self.store.prunable(cutoff) {
            Ok(Some(link)) => link,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(error = %e, "recording: retention could not read the chain");
                return;
            }
        };
        let anchor = match &self.signer {
            Some((key, _)) => key.sign_anchor(link.n, link.hash, cutoff),
            None => crate::store::checkpoint::Anchor {
                link: link.n,
                hash: link.hash,
                cutoff_us: cutoff,
                signature: Vec::new(),
            },
        };
        match self.store.prune(&anchor) {
            Ok(()) => {
                tracing::info!(
                    through_link = link.n,
                    "recording: retention pruned ended sessions"
                );
                // The last checkpoint went with what it covered: the
                // chain's head is signed again (its number goes on).
                if let Some((n, covered)) = self.signed {
                    if covered <= link.n {
                        self.signed = Some((n, u64::MAX));
                    }
                }
                // (A chain pruned whole is covered by its signed anchor.)
                if self.last_link.as_ref().is_some_and(|l| l.n > link.n) {
                    self.checkpoint(true);
                }
            }
            Err(e) => tracing::error!(error = %e, "recording: retention could not prune"),
        }
    }

    /// Signs the chain's last link when it moved and it is time (or
    /// `now`).
    pub(super) fn checkpoint(&mut self, now: bool) {
        let (Some((key, every)), Some(link)) = (&self.signer, &self.last_link) else {
            return;
        };
        if !self.trusted {
            return;
        }
        if self.signed.is_some_and(|(_, l)| l == link.n)
            || (!now && self.signed_at.elapsed() < *every)
        {
            return;
        }
        let (at, hash, at_us) = (link.n, link.hash, now_us());
        match self.store.add_checkpoint(&|n| key.sign(n, at, hash, at_us)) {
            Ok(cp) => {
                self.signed = Some((cp.n, cp.link));
                self.signed_at = Instant::now();
            }
            Err(e) => tracing::error!(error = %e, "recording: a checkpoint could not be written"),
        }
    }
}
