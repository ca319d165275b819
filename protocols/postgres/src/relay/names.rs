//! The server's prepared statements and portals as the relay knows them,
//! in a masking session: which plan masks the rows of each.
//!
//! Why apart from the model: the model (`model.rs`) decides *when* the
//! server has confirmed something; this decides *what* it changed. Names
//! are keyed as the server keys them ([`key`]); a name the relay does not
//! know resolves to the session's unknown-origin mask. This module must
//! never change a map on the client's word: only the model calls it, on
//! the server's answers.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use crate::hooks::{Effect, Planned};
use crate::mask::{Field, ResultMask};

/// The columns of a prepared statement, filled in when the server answers
/// the Describe the relay sends after its Parse.
pub(super) type FieldsSlot = Arc<OnceLock<Vec<Field>>>;

/// How the rows of a statement are masked.
#[derive(Debug, Clone, Default)]
pub(super) enum Plan {
    /// Not followed: a session without masking.
    #[default]
    Clear,
    /// Masked by this.
    Mask(Arc<dyn ResultMask>),
    /// The rows of this portal (SQL `FETCH`): masked by the portal's plan
    /// when the rows arrive.
    Cursor(Vec<u8>),
    /// The rows of this prepared statement (SQL `EXECUTE`): masked by its
    /// plan when the rows arrive.
    Prepared(Vec<u8>),
}

/// A statement or portal name as the server keys it: its tables keep 63
/// bytes of a name (`NAMEDATALEN - 1`), so longer names that share those
/// are one name to the server, and must be to the relay.
pub(super) fn key(name: &[u8]) -> Vec<u8> {
    server_name(name).to_vec()
}

/// [`key`], borrowed.
pub(super) fn server_name(name: &[u8]) -> &[u8] {
    &name[..name.len().min(63)]
}

/// A prepared statement as the server has it.
#[derive(Debug, Clone, Default)]
pub(super) struct Statement {
    pub plan: Plan,
    pub fields: FieldsSlot,
    /// What it does to the server's names when it completes.
    pub effect: Effect,
}

impl Statement {
    /// A statement of a masking session, as the judge planned it.
    pub fn planned(p: &Planned) -> Self {
        Statement {
            plan: plan_of(p),
            fields: FieldsSlot::default(),
            effect: p.effect.clone(),
        }
    }
}

/// A portal as the server has it.
#[derive(Debug, Clone, Default)]
pub(super) struct Portal {
    pub statement: Statement,
    pub formats: Vec<i16>,
    /// An SQL cursor `WITH HOLD`: survives its transaction's commit.
    pub hold: bool,
    /// A held cursor whose transaction committed (until then, its
    /// transaction's failure drops it like any portal).
    pub committed: bool,
}

/// The maps, and what an unknown name stands for.
#[derive(Debug)]
pub(super) struct Names {
    /// Names are followed (masking sessions); otherwise every plan is
    /// `Clear` and the maps stay empty.
    masking: bool,
    statements: HashMap<Vec<u8>, Statement>,
    portals: HashMap<Vec<u8>, Portal>,
    /// The mask of results the relay cannot tie to a judged statement.
    unknown: Option<Arc<dyn ResultMask>>,
    /// The columns slot of every unknown statement in a session that does
    /// not follow names: only the relay's own Describe fills a slot, and
    /// such a session sends none, so one empty slot serves them all (an
    /// allocation less per execution, where every name is unknown).
    never_filled: FieldsSlot,
}

impl Names {
    pub fn new(masking: bool, unknown: Option<Arc<dyn ResultMask>>) -> Self {
        Names {
            masking,
            statements: HashMap::new(),
            portals: HashMap::new(),
            unknown,
            never_filled: FieldsSlot::default(),
        }
    }

    /// The mask of a result no statement announced (masking sessions).
    pub fn unknown_result(&self) -> Option<Arc<dyn ResultMask>> {
        self.unknown.clone().filter(|_| self.masking)
    }

    /// A statement's statement plan by name, as the server has it now
    /// (fail-closed for names the relay does not know).
    pub fn statement(&self, name: &[u8]) -> Statement {
        match self.statements.get(name) {
            Some(s) => s.clone(),
            None => self.unknown_statement(),
        }
    }

    pub fn unknown_statement(&self) -> Statement {
        Statement {
            plan: self.unknown_plan(),
            fields: match self.masking {
                // A masking session keeps the statements it follows in
                // its maps, each with a slot of its own.
                true => FieldsSlot::default(),
                false => self.never_filled.clone(),
            },
            effect: Effect::default(),
        }
    }

    fn unknown_plan(&self) -> Plan {
        match (&self.unknown, self.masking) {
            (Some(m), true) => Plan::Mask(m.clone()),
            _ => Plan::Clear,
        }
    }

    pub fn portal(&self, name: &[u8]) -> Portal {
        match self.portals.get(name) {
            Some(p) => p.clone(),
            None => Portal {
                statement: self.unknown_statement(),
                formats: Vec::new(),
                hold: false,
                committed: false,
            },
        }
    }

    /// The mask a plan stands for now.
    pub fn resolve(&self, plan: &Plan) -> Option<Arc<dyn ResultMask>> {
        match plan {
            Plan::Clear => None,
            Plan::Mask(m) => Some(m.clone()),
            Plan::Cursor(name) => match self.portals.get(name).map(|p| &p.statement.plan) {
                Some(Plan::Mask(m)) => Some(m.clone()),
                _ => self.unknown.clone(),
            },
            Plan::Prepared(name) => match self.statements.get(name).map(|s| &s.plan) {
                Some(Plan::Mask(m)) => Some(m.clone()),
                _ => self.unknown.clone(),
            },
        }
    }

    /// ParseComplete: the statement exists under its name.
    pub fn parsed(&mut self, name: Vec<u8>, statement: Statement) {
        if self.masking {
            self.statements.insert(name, statement);
        }
    }

    /// BindComplete: the portal runs the statement of that name as the
    /// server has it now.
    pub fn bound(&mut self, portal: Vec<u8>, statement: &[u8], formats: Vec<i16>) {
        if self.masking {
            let statement = self.statement(statement);
            self.portals.insert(
                portal,
                Portal {
                    statement,
                    formats,
                    hold: false,
                    committed: false,
                },
            );
        }
    }

    /// CloseComplete.
    pub fn closed(&mut self, portal: bool, name: &[u8]) {
        if portal {
            self.portals.remove(name);
        } else {
            self.statements.remove(name);
        }
    }

    /// The unnamed statement is gone (a failed or refused Parse drops it
    /// before parsing).
    pub fn unnamed_statement_dropped(&mut self) {
        self.statements.remove(&b""[..]);
    }

    /// A failed Bind of the unnamed portal may have dropped the old one
    /// first: forgotten either way (fail-closed).
    pub fn unnamed_portal_dropped(&mut self) {
        self.portals.remove(&b""[..]);
    }

    /// The statement a portal runs, if the relay knows the portal.
    pub fn executed(&self, portal: &[u8]) -> Option<Statement> {
        self.portals.get(portal).map(|p| p.statement.clone())
    }

    /// A statement completed with this CommandComplete: what it did to
    /// the server's names.
    pub fn completed(&mut self, statement: Option<Statement>, body: &[u8]) {
        if !self.masking {
            return;
        }
        let (effect, plan) = match statement {
            Some(s) => (Some(s.effect), s.plan),
            None => (None, self.unknown_plan()),
        };
        let tag = body.split(|&b| b == 0).next().unwrap_or_default();
        match tag {
            b"COMMIT" | b"PREPARE TRANSACTION" => self.commit(),
            // Also ROLLBACK TO SAVEPOINT, which drops only the portals
            // made since: any survivor is unknown to the relay from now.
            b"ROLLBACK" => self.portals.clear(),
            // A procedure may commit inside: its portals end.
            b"CALL" => self.portals.retain(|_, p| p.hold && p.committed),
            b"DISCARD ALL" => {
                self.portals.clear();
                self.statements.clear();
            }
            b"DEALLOCATE ALL" => self.statements.clear(),
            b"DEALLOCATE" => match effect {
                Some(Effect::Deallocate(Some(name))) => {
                    self.statements.remove(&name);
                }
                _ => self.statements.clear(),
            },
            b"PREPARE" => match effect {
                // A statement of SQL's: its plan is the relay's unknown.
                Some(Effect::Prepare(name)) => {
                    let unknown = self.unknown_statement();
                    self.statements.insert(name, unknown);
                }
                _ => self.statements.clear(),
            },
            b"CLOSE CURSOR" => match effect {
                Some(Effect::Close(Some(name))) => {
                    self.portals.remove(&name);
                }
                _ => self.portals.clear(),
            },
            b"CLOSE CURSOR ALL" => self.portals.clear(),
            b"DECLARE CURSOR" => match effect {
                Some(Effect::Declare { name, hold, binary }) => {
                    self.portals.insert(
                        name,
                        Portal {
                            statement: Statement {
                                plan,
                                ..Statement::default()
                            },
                            formats: if binary { vec![1] } else { Vec::new() },
                            hold,
                            committed: false,
                        },
                    );
                }
                // A cursor the relay cannot name: whatever it had under
                // that name is gone or stale.
                _ => self.portals.clear(),
            },
            _ => {}
        }
    }

    /// The transaction committed: its held cursors live on, every other
    /// portal ends.
    fn commit(&mut self) {
        self.portals.retain(|_, p| p.hold);
        for p in self.portals.values_mut() {
            p.committed = true;
        }
    }

    /// An implicit transaction ended (ReadyForQuery `I`): committed,
    /// unless an error rolled it back (and its held cursors with it).
    pub fn transaction_ended(&mut self, failed: bool) {
        if failed {
            self.portals.retain(|_, p| p.hold && p.committed);
        } else {
            self.commit();
        }
    }
}

/// The plan of a statement of a Query.
pub(super) fn plan_of(p: &Planned) -> Plan {
    match &p.effect {
        Effect::Fetch(name) => Plan::Cursor(name.clone()),
        Effect::Execute(name) => Plan::Prepared(name.clone()),
        _ => Plan::Mask(p.mask.clone()),
    }
}
