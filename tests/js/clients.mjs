// Third-party clients end to end against a running livecart (tests/test_clients.py).
// Usage: node clients.mjs BASE_URL SCENARIO STREAM_ID
// Each scenario subscribes to viewerCount(streamId) (its first result is the current count),
// joins the stream with a mutation through the same client, and waits for the count to move:
// the second result comes through the shared delivery path. It prints one JSON line per result.
import { createHash } from 'node:crypto';
import WebSocket from 'ws';
import { createClient as createWsClient } from 'graphql-ws';
import { createClient as createSseClient } from 'graphql-sse';
import { ApolloClient, InMemoryCache, HttpLink, gql, split } from '@apollo/client/core/index.js';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions/index.js';
import { createPersistedQueryLink } from '@apollo/client/link/persisted-queries/index.js';
import { getMainDefinition } from '@apollo/client/utilities/index.js';

const [base, scenario, streamId] = process.argv.slice(2);
const http = `${base}/graphql`;
const wsUrl = http.replace(/^http/, 'ws');
const VIEWERS = 'subscription($s: ID!) { viewerCount(streamId: $s) { count } }';
const JOIN = 'mutation($s: ID!) { joinStream(streamId: $s) { id } }';
const STREAM = 'query($id: ID!) { stream(id: $id) { id title } }';
const log = (what, value) => console.log(JSON.stringify({ what, value }));
const fail = (message) => { console.error(message); process.exit(1); };
setTimeout(() => fail(`${scenario}: timed out`), 30000).unref();

// The counts seen: the first, then (after our join) a higher one.
async function followCounts(subscribe, join) {
  const counts = [];
  await new Promise((resolve, reject) => {
    const stop = subscribe({
      next: (result) => {
        if (result.errors) return reject(new Error(JSON.stringify(result.errors)));
        counts.push(result.data.viewerCount.count);
        log('next', result.data);
        if (counts.length === 1) join().catch(reject);
        else if (counts.at(-1) > counts[0]) { stop(); resolve(); }
      },
      error: (error) => reject(error instanceof Error ? error : new Error(JSON.stringify(error))),
      complete: () => {},
    });
  });
  return counts;
}

async function graphqlWs() {
  const client = createWsClient({ url: wsUrl, webSocketImpl: WebSocket });
  const query = await new Promise((resolve, reject) => {
    let value;
    client.subscribe({ query: STREAM, variables: { id: streamId } }, {
      next: (v) => { value = v; }, error: reject, complete: () => resolve(value),
    });
  });
  log('query', query);
  await followCounts(
    (sink) => client.subscribe({ query: VIEWERS, variables: { s: streamId } }, sink),
    () => new Promise((resolve, reject) => client.subscribe({ query: JOIN, variables: { s: streamId } }, { next: () => {}, error: reject, complete: resolve })),
  );
  await client.dispose();
}

async function graphqlSse() {
  const client = createSseClient({ url: http, singleConnection: false, retryAttempts: 0 });
  const query = await new Promise((resolve, reject) => {
    let value;
    client.subscribe({ query: STREAM, variables: { id: streamId } }, { next: (v) => { value = v; }, error: reject, complete: () => resolve(value) });
  });
  log('query', query);
  await followCounts(
    (sink) => client.subscribe({ query: VIEWERS, variables: { s: streamId } }, sink),
    () => new Promise((resolve, reject) => client.subscribe({ query: JOIN, variables: { s: streamId } }, { next: () => {}, error: reject, complete: resolve })),
  );
  client.dispose();
}

function sha256(text) {
  return createHash('sha256').update(text).digest('hex');
}

function apolloClient({ persisted = false, websocket = true } = {}) {
  const seen = [];
  const recordingFetch = async (url, options) => {
    seen.push({ method: options.method, body: options.body ?? null, url: String(url), accept: options.headers?.accept });
    const response = await fetch(url, options);
    seen.at(-1).status = response.status;
    return response;
  };
  let httpLink = new HttpLink({ uri: http, fetch: recordingFetch });
  if (persisted) httpLink = createPersistedQueryLink({ sha256, useGETForHashedQueries: true }).concat(httpLink);
  let link = httpLink;
  let wsClient;
  if (websocket) {
    wsClient = createWsClient({ url: wsUrl, webSocketImpl: WebSocket });
    link = split(({ query }) => {
      const definition = getMainDefinition(query);
      return definition.kind === 'OperationDefinition' && definition.operation === 'subscription';
    }, new GraphQLWsLink(wsClient), httpLink);
  }
  return { client: new ApolloClient({ link, cache: new InMemoryCache() }), seen, wsClient };
}

async function apolloFollow(client) {
  return followCounts(
    (sink) => {
      const sub = client.subscribe({ query: gql(VIEWERS), variables: { s: streamId } }).subscribe(sink);
      return () => sub.unsubscribe();
    },
    () => client.mutate({ mutation: gql(JOIN), variables: { s: streamId } }),
  );
}

async function apollo() {
  const { client, wsClient } = apolloClient();
  const { data } = await client.query({ query: gql(STREAM), variables: { id: streamId }, fetchPolicy: 'network-only' });
  log('query', data);
  await apolloFollow(client);
  await wsClient.dispose();
}

async function apolloPersisted() {
  const { client, seen, wsClient } = apolloClient({ persisted: true });
  for (let round = 0; round < 2; round += 1) {
    const { data } = await client.query({ query: gql(STREAM), variables: { id: streamId }, fetchPolicy: 'network-only' });
    log('query', data);
  }
  log('requests', seen);
  await wsClient.dispose();
}

async function apolloMultipart() {
  // No WebSocket link: Apollo's HttpLink sends the subscription as a multipart HTTP request.
  const { client, seen } = apolloClient({ websocket: false });
  await apolloFollow(client);
  log('requests', seen.map(({ method, accept, status }) => ({ method, accept, status })));
}

const scenarios = { 'graphql-ws': graphqlWs, 'graphql-sse': graphqlSse, apollo, 'apollo-persisted': apolloPersisted, 'apollo-multipart': apolloMultipart };
try {
  await scenarios[scenario]();
  process.exit(0);
} catch (error) {
  fail(`${scenario}: ${error?.stack ?? JSON.stringify(error)}`);
}
