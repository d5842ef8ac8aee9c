// "/login": log in or register, then go back to ?return= (a path on this site only).

import { gql, setToken } from "/static/graphql.js";
import { $, fill } from "/static/ui.js";

const LOGIN = `mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token user { username } } }`;
const REGISTER = `mutation($u: String!, $p: String!) { register(username: $u, password: $p) { token user { username } } }`;

/**
 * Where to go afterwards: a path on this site, never another site (no open redirect).
 * Resolved the way the browser will resolve it, since browsers drop tabs and newlines
 * from URLs ("/\t/evil.example" is "//evil.example") and read "\\" as "/".
 */
export function safeReturn(value) {
  if (!value || !value.startsWith("/")) return "/";
  let url;
  try {
    url = new URL(value, location.origin);
  } catch (err) {
    return "/";
  }
  return url.origin === location.origin ? url.pathname + url.search + url.hash : "/";
}

const returnTo = safeReturn(new URLSearchParams(location.search).get("return"));
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
