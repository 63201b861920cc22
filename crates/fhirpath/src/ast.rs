//! The parsed form of an expression.

/// A literal value written in the expression.
#[derive(Debug, Clone)]
pub(crate) enum Literal {
    /// `{}`
    Empty,
    Bool(bool),
    Str(std::sync::Arc<str>),
    Int(i64),
    /// A decimal as written, parsed when the expression is parsed.
    Dec(crate::value::Dec),
    Date(crate::value::DateTime),
    DateTime(crate::value::DateTime),
    Time(crate::value::DateTime),
    Quantity(crate::value::Dec, std::sync::Arc<str>),
}

/// A binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    Mul,
    Div,
    IntDiv,
    Mod,
    Add,
    Sub,
    Concat,
    Union,
    Lt,
    Gt,
    Le,
    Ge,
    Eq,
    Equiv,
    Ne,
    NotEquiv,
    In,
    Contains,
    And,
    Or,
    Xor,
    Implies,
}

/// A type name as in `is`, `as`, `ofType`: an optional namespace (`FHIR`,
/// `System`) and a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TypeSpec {
    pub namespace: Option<String>,
    pub name: String,
}

/// An expression node.
#[derive(Debug, Clone)]
pub(crate) enum Expr {
    Literal(Literal),
    /// `$this`
    This,
    /// `$index`
    Index,
    /// `$total`
    Total,
    /// `%name`
    Var(String),
    /// An identifier at the start of a path: a member of `$this`, or a type name
    /// that filters it (`Patient.name`).
    Ident(String),
    /// `expr.name`
    Member(Box<Expr>, String),
    /// `expr.f(args)` or `f(args)` (on `$this`); `name` is from the function table.
    Call {
        target: Option<Box<Expr>>,
        name: &'static str,
        args: Vec<Expr>,
        /// For `is`, `as`, `ofType`: the type argument, resolved when parsing.
        type_arg: Option<TypeSpec>,
    },
    /// `expr[index]`
    Indexer(Box<Expr>, Box<Expr>),
    /// `-expr` (`+expr` is parsed as `expr`)
    Negate(Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    Is(Box<Expr>, TypeSpec),
    As(Box<Expr>, TypeSpec),
}
