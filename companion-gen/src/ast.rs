//! The syntax tree of a contract file, as written: names keep their
//! positions, nothing is resolved yet. [`crate::check`] turns it into a
//! [`crate::model::Contract`].

use crate::diagnostics::Span;

/// A name and where it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Name {
    /// The identifier.
    pub text: String,
    /// Where it starts.
    pub span: Span,
}

/// A whole contract file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct File {
    /// `///` lines before `contract`.
    pub docs: Vec<String>,
    /// The contract's name.
    pub name: Name,
    /// Messages and sections, in order.
    pub items: Vec<Item>,
}

/// Something inside `contract NAME { ... }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    /// `request ...` or `reply ...`
    Message(MessageDecl),
    /// `protocol { ... }`
    Protocol(ProtocolDecl),
    /// `resilience { ... }`
    Resilience(ResilienceDecl),
}

/// Which way a message goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Client to service.
    Request,
    /// Service to client.
    Reply,
}

impl Direction {
    /// `request` or `reply`.
    pub fn word(self) -> &'static str {
        match self {
            Direction::Request => "request",
            Direction::Reply => "reply",
        }
    }

    /// `requests` or `replies`.
    pub fn plural(self) -> &'static str {
        match self {
            Direction::Request => "requests",
            Direction::Reply => "replies",
        }
    }
}

/// `request Name { fields }` or `reply Name { fields }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageDecl {
    /// `///` lines before it.
    pub docs: Vec<String>,
    /// Request or reply.
    pub direction: Direction,
    /// The message's name.
    pub name: Name,
    /// Its fields, in order.
    pub fields: Vec<FieldDecl>,
}

/// `name: type`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldDecl {
    /// `///` lines before it.
    pub docs: Vec<String>,
    /// The field's name.
    pub name: Name,
    /// Its type.
    pub ty: TypeRef,
}

/// A type as written: a name, an optional `<element>` (for `list`) and an
/// optional `[max]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypeRef {
    /// `u32`, `string`, `list`, ...
    pub name: Name,
    /// `<T>`: the element type of a list.
    pub element: Option<Box<TypeRef>>,
    /// `[N]` and where N is (a maximum length, or a list's maximum count).
    pub max: Option<(u64, Span)>,
}

/// `protocol { ... }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtocolDecl {
    /// Where the keyword is.
    pub span: Span,
    /// Its statements, in order.
    pub items: Vec<ProtocolItem>,
}

/// A statement of the protocol section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProtocolItem {
    /// `start State;` (the span is the keyword's).
    Start(Name, Span),
    /// `error Reply;` (the span is the keyword's).
    Error(Name, Span),
    /// `[client|service] state Name { ... }`
    State(StateDecl),
}

/// Whose turn a state is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Turn {
    /// The client may send a request.
    Client,
    /// The service owes a reply.
    Service,
}

impl Turn {
    /// `client-turn` or `service-turn`.
    pub fn describe(self) -> &'static str {
        match self {
            Turn::Client => "client-turn",
            Turn::Service => "service-turn",
        }
    }
}

/// `state Name { transitions }`, optionally marked `client` or `service`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateDecl {
    /// `///` lines before it.
    pub docs: Vec<String>,
    /// An explicit `client` / `service` mark and where it is.
    pub turn: Option<(Turn, Span)>,
    /// The state's name.
    pub name: Name,
    /// Its transitions, in order.
    pub transitions: Vec<TransitionDecl>,
}

/// `Message -> State;` or `Request -> Reply -> State;`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransitionDecl {
    /// The message that leaves the state.
    pub message: Name,
    /// With the sugar form, the message answering it.
    pub then: Option<Name>,
    /// The state reached at the end.
    pub target: Name,
}

/// `resilience { ... }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResilienceDecl {
    /// Where the keyword is.
    pub span: Span,
    /// Its statements, in order.
    pub items: Vec<ResilienceItem>,
}

/// The unit of `checkpoint every N ...`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Every {
    /// `requests`
    Requests,
    /// `ms`
    Ms,
}

/// How a service's state is captured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Distillation {
    /// The service serialises what matters.
    Logical,
    /// The companion copies the state arena.
    Image,
}

/// A statement of the resilience section (spans are the keywords').
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResilienceItem {
    /// `checkpoint after A, B;`
    CheckpointAfter(Vec<Name>, Span),
    /// `checkpoint every N requests;` / `checkpoint every N ms;`
    CheckpointEvery {
        /// N.
        count: u64,
        /// Where N is.
        count_span: Span,
        /// The unit.
        unit: Every,
        /// Where `checkpoint` is.
        span: Span,
    },
    /// `idempotent A, B;`
    Idempotent(Vec<Name>, Span),
    /// `durable A, B;`
    Durable(Vec<Name>, Span),
    /// `deadline N ms;` (the service's) or `deadline A, B N s;` (those
    /// requests').
    Deadline {
        /// The requests (none: the service's default).
        requests: Vec<Name>,
        /// N, in milliseconds.
        ms: u64,
        /// Where N is.
        ms_span: Span,
        /// Where `deadline` is.
        span: Span,
    },
    /// `distillation logical;`
    Distillation(Distillation, Span),
    /// `unrecoverable Reply { field: literal, ... };`
    Unrecoverable {
        /// The reply.
        message: Name,
        /// Its fields' values, as written.
        fields: Vec<(Name, Literal)>,
        /// Where `unrecoverable` is.
        span: Span,
    },
}

/// A literal value and where it starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Literal {
    /// The value.
    pub value: LiteralValue,
    /// Where it starts.
    pub span: Span,
}

/// A literal value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LiteralValue {
    /// An integer, possibly negative.
    Int(i128),
    /// `true` or `false`.
    Bool(bool),
    /// A string (for `string` and `bytes` fields).
    Str(String),
    /// `[a, b, ...]` (for `list` fields): literals that are not lists.
    List(Vec<Literal>),
}

impl LiteralValue {
    /// "an integer", "a boolean", "a string", "a list".
    pub fn kind(&self) -> &'static str {
        match self {
            LiteralValue::Int(_) => "an integer",
            LiteralValue::Bool(_) => "a boolean",
            LiteralValue::Str(_) => "a string",
            LiteralValue::List(_) => "a list",
        }
    }
}
