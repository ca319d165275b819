//! Whether a condition is true whatever the rows (`WHERE 1 = 1`,
//! `OR TRUE`): constant folding of the few forms an agent writes to reach
//! every row. It must never call a condition that depends on a row
//! always true.

use super::*;

/// Whether a WHERE clause holds for every row: constants that are true,
/// comparisons of equal constants or of an expression with itself, and
/// AND/OR/NOT of those.
pub fn always_true(e: &Expr) -> bool {
    truth(e).unwrap_or_default()
}

/// The constant truth value of an expression, if it has one.
pub(super) fn truth(e: &Expr) -> Option<bool> {
    match e {
        Expr::Nested(inner) => truth(inner),
        Expr::Value(v) => match &v.value {
            _ if note_literal(e) => None,
            Value::Boolean(b) => Some(*b),
            Value::Number(n, _) => n.parse::<f64>().ok().map(|x| x != 0.0),
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => {
                // MySQL converts a string to a number: '1' is true.
                Some(s.trim().parse::<f64>().is_ok_and(|x| x != 0.0))
            }
            Value::Null => Some(false),
            _ => None,
        },
        Expr::UnaryOp {
            op: UnaryOperator::Not,
            expr,
        } => truth(expr).map(|t| !t),
        Expr::BinaryOp { left, op, right } => match op {
            BinaryOperator::Or => match (truth(left), truth(right)) {
                (Some(true), _) | (_, Some(true)) => Some(true),
                (Some(false), Some(false)) => Some(false),
                _ => None,
            },
            BinaryOperator::And => match (truth(left), truth(right)) {
                (Some(true), Some(true)) => Some(true),
                (Some(false), _) | (_, Some(false)) => Some(false),
                _ => None,
            },
            BinaryOperator::Eq
            | BinaryOperator::GtEq
            | BinaryOperator::LtEq
            | BinaryOperator::Spaceship
                if same_expr(left, right) =>
            {
                Some(true)
            }
            BinaryOperator::Eq
            | BinaryOperator::NotEq
            | BinaryOperator::Gt
            | BinaryOperator::Lt
            | BinaryOperator::GtEq
            | BinaryOperator::LtEq => compare_constants(left, op, right),
            _ => None,
        },
        Expr::IsTrue(inner) => truth(inner),
        Expr::IsNotFalse(inner) => match inner.as_ref() {
            Expr::Value(v) if matches!(v.value, Value::Null) => {
                literal_read();
                Some(true)
            }
            other => truth(other),
        },
        Expr::IsNotNull(inner) => match inner.as_ref() {
            Expr::Value(v) => {
                literal_read();
                Some(!matches!(v.value, Value::Null))
            }
            _ => None,
        },
        Expr::Like {
            negated: false,
            pattern,
            ..
        }
        | Expr::ILike {
            negated: false,
            pattern,
            ..
        } => match string_literal(pattern) {
            // Every row but those where it is NULL: unbounded enough.
            Some("%") => Some(true),
            _ => None,
        },
        Expr::InList {
            expr,
            list,
            negated: false,
        } if !note_literal(expr) && list.iter().any(|x| x == expr.as_ref()) => Some(true),
        Expr::Between {
            expr,
            negated: false,
            low,
            high,
        } if !note_literal(expr) && low == expr && high == expr => Some(true),
        _ => None,
    }
}

pub(super) fn number(e: &Expr) -> Option<f64> {
    match e {
        Expr::Nested(inner) => number(inner),
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => n.parse().ok(),
            Value::Boolean(b) => Some(f64::from(u8::from(*b))),
            _ => None,
        },
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => number(expr).map(|x| -x),
        _ => None,
    }
}

pub(super) fn compare_constants(left: &Expr, op: &BinaryOperator, right: &Expr) -> Option<bool> {
    let ord = match (number(left), number(right)) {
        (Some(a), Some(b)) => {
            literal_read();
            a.partial_cmp(&b)?
        }
        _ => {
            let (a, b) = (string_literal(left)?, string_literal(right)?);
            a.cmp(b)
        }
    };
    use std::cmp::Ordering::*;
    Some(match op {
        BinaryOperator::Eq => ord == Equal,
        BinaryOperator::NotEq => ord != Equal,
        BinaryOperator::Gt => ord == Greater,
        BinaryOperator::Lt => ord == Less,
        BinaryOperator::GtEq => ord != Less,
        BinaryOperator::LtEq => ord != Greater,
        _ => return None,
    })
}
