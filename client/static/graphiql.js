// GraphiQL's fetcher (issue 16): queries and mutations as GraphQL over HTTP
// (application/graphql-response+json), subscriptions as GraphQL over SSE (graphql-sse's distinct
// connections mode), both to this origin's /graphql. The headers editor's Authorization is sent as is.
/* global React, ReactDOM, GraphiQL */

const URL_ = "/graphql";

function operationOf(params) {
  // From the text sent (GraphiQL's parsed document may lag behind its editor): the named
  // operation's keyword, else the first operation's ("{" alone is a query).
  const text = (params.query ?? "").replace(/#[^\n]*/g, "").replace(/"(?:[^"\\]|\\.)*"/g, '""');
  if (params.operationName) {
    const named = new RegExp(`\\b(query|mutation|subscription)\\s+${params.operationName}\\b`).exec(text);
    if (named) return named[1];
  }
  const first = /(?:^|})\s*(query|mutation|subscription|\{)/.exec(text);
  return first && first[1] !== "{" ? first[1] : "query";
}

async function* events(response) {
  // One SSE event at a time: "next" carries a result, "complete" ends the stream.
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
      }
      if (event === "complete") {
        reader.cancel();
        return;
      }
      if (event === "next") yield JSON.parse(data.join("\n"));
    }
  }
}

async function fetcher(params, opts) {
  const subscription = operationOf(params) === "subscription";
  const response = await fetch(URL_, {
    method: "POST",
    headers: {
      "Content-Type": "application/json",
      Accept: subscription ? "text/event-stream" : "application/graphql-response+json, application/json;q=0.9",
      ...(opts?.headers ?? {}),
    },
    body: JSON.stringify(params),
  });
  if (subscription && response.ok && response.headers.get("Content-Type")?.startsWith("text/event-stream")) {
    return events(response);
  }
  return response.json();
}

const root = ReactDOM.createRoot(document.getElementById("graphiql"));
root.render(React.createElement(GraphiQL, { fetcher, defaultEditorToolsVisibility: true }));
