// "/login": log in or register, then go back to ?return= (a path on this site only, as the server decided).

import { gql, setToken } from "/static/graphql.js";
import { $, fill } from "/static/ui.js";

const LOGIN = `mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token user { username } } }`;
const REGISTER = `mutation($u: String!, $p: String!) { register(username: $u, password: $p) { token user { username } } }`;

/**
 * Where to go afterwards: the server decided it from ?return= when it served this page
 * (server/return_path.py: a path on this site, resolved as a browser resolves it, never
 * "//..." or "/\\..."), and wrote it into <meta name="return-to">. The page does not decide again.
 */
function serverReturn() {
  const value = document.querySelector('meta[name="return-to"]')?.content || "/";
  // Only a page served without the server's answer could hold anything else.
  return value.startsWith("/") && !value.startsWith("//") && !value.startsWith("/\\") ? value : "/";
}

const returnTo = serverReturn();
if (returnTo.startsWith("/live/")) {
  fill($("#login-reason"), "Log in to like, chat and buy on this stream; you will be taken straight back to it.");
}

async function submit(mutation, field) {
  const form = $("#login-form");
  if (!form.reportValidity()) return;
  const username = $("#username-input").value.trim();
  const password = $("#password-input").value;
  fill($("#login-error"));
  for (const button of form.querySelectorAll("button")) button.disabled = true;
  try {
    const data = await gql(mutation, { u: username, p: password });
    setToken(data[field].token);
    location.assign(returnTo);
  } catch (err) {
    fill($("#login-error"), err.message);
    for (const button of form.querySelectorAll("button")) button.disabled = false;
  }
}

$("#login-form").addEventListener("submit", (event) => {
  event.preventDefault();
  submit(LOGIN, "login");
});
$("#register-button").addEventListener("click", () => submit(REGISTER, "register"));
