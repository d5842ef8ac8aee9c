"""The real-time engine: it knows no web framework and no strawberry internals.

Public surface, by module:
- events: the event constructors, each declaring its kind (`@kind`: coalesced? moves the
  seller's figures?), `kinds_of`, the channel names.
- broker: `create_broker(redis_url, share_events=...)`, `publish_to_stream`, `publish_to_directory`
  (in-process, or redis_broker.RedisBroker between processes), each delivering into a
- hub: `Hub` (local subscribers per channel, coalescing, groups of alike subscribers) and
  `SharedEvent.once` (computed once per event per process).
- shared: `shared_delivery` / `SharedExecution` (a result executed once per document, variables
  and caller role, its bytes written to each), `current_operation` (set by a transport).
- transport: the graphql-transport-ws and graphql-ws protocols (`SESSIONS`, `Hooks`, `Limits`,
  `Result`, `Rejected`, `Refused`), over a
- sendqueue: `SendQueue` on a `Socket` (bounded, coalescing, drops a client that stops reading).
A web framework adapts a socket and implements the hooks (server/ws_aiohttp.py for aiohttp).
"""
