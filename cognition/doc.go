// Package cognition is what makes a conversation come alive: when a person
// posts a message, a Router decides what to do with it, a domain Expert does
// the work and answers in the conversation, and a Memory (the workspace's
// whiteboard) keeps what matters. Everything is driven by events and
// recorded as events, so it can be audited and replayed.
//
// This package holds the contracts — Router, Expert, Memory,
// SignalPublisher — and what every implementation shares. The
// implementations live in subpackages: routing (the rule-based and
// pattern-table routers), experts (echo and memory), llm (any
// OpenAI-compatible chat endpoint), postgres and inmem (the memory read
// model and an in-memory memory), memorytest (the contract suite every
// Memory passes) and engine (the consumer-group reactor that routes
// messages and the worker that runs experts).
//
// See docs/cognition.md for the pipeline and for how to add a router, an
// expert or a memory.
package cognition
