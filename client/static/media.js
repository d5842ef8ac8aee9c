// The seller's camera: device pickers, a local preview, mute toggles, and publishing
// with WHIP (RFC 9725) to livecart, which needs nothing installed. Also the line
// that says whether media are arriving, with their resolution and bitrate.

import { gql } from "/static/graphql.js";
import { $, fill, h, notify } from "/static/ui.js";

const MEDIA_STATUS = `query($id: ID!) { stream(id: $id) { broadcasting media { width height bitrateKbps } } }`;
const STATUS_POLL_MS = 5000;
const ICE_GATHERING_MS = 3000;

const cam = {
  root: null,
  stream: null, // the MediaStream of the chosen devices
  pc: null,
  location: null, // the WHIP session to DELETE when stopping
  preview: null,
  message: null,
  cameraSelect: null,
  micSelect: null,
  videoOn: true,
  audioOn: true,
  onChange: () => {},
};

function say(text, kind = "muted") {
  fill(cam.message, text);
  cam.message.className = `small ${kind}`;
}

function explain(err) {
  if (err?.name === "NotAllowedError" || err?.name === "SecurityError") {
    return "Camera and microphone were refused. Allow them for this site in the browser's settings, or publish from OBS with the stream key above.";
  }
  if (err?.name === "NotFoundError" || err?.name === "OverconstrainedError") {
    return "No camera or microphone was found. Connect one, or publish from OBS with the stream key above.";
  }
  if (err?.name === "NotReadableError") return "The camera or microphone is in use by another application.";
  if (!navigator.mediaDevices?.getUserMedia) return "This browser cannot use a camera here (it needs https or localhost).";
  return `The camera could not start: ${err?.message || err}`;
}

async function fillDevices() {
  const devices = await navigator.mediaDevices.enumerateDevices();
  const pick = (select, kind, current) => {
    const options = devices.filter((d) => d.kind === kind).map((d, i) =>
      h("option", { value: d.deviceId, selected: d.deviceId === current }, d.label || `${kind === "videoinput" ? "Camera" : "Microphone"} ${i + 1}`));
    fill(select, options);
  };
  pick(cam.cameraSelect, "videoinput", cam.stream?.getVideoTracks()[0]?.getSettings().deviceId);
  pick(cam.micSelect, "audioinput", cam.stream?.getAudioTracks()[0]?.getSettings().deviceId);
}

/** Opens the chosen devices (or the defaults), shows them, and swaps them into a running publish. */
async function openDevices() {
  const constraints = {
    video: { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 },
      ...(cam.cameraSelect.value ? { deviceId: { exact: cam.cameraSelect.value } } : {}) },
    audio: cam.micSelect.value ? { deviceId: { exact: cam.micSelect.value } } : true,
  };
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia(constraints);
  } catch (err) {
    say(explain(err), "error");
    return false;
  }
  const previous = cam.stream;
  cam.stream = stream;
  applyMutes();
  cam.preview.srcObject = stream;
  cam.preview.hidden = false;
  if (cam.pc) {
    for (const sender of cam.pc.getSenders()) {
      const track = stream.getTracks().find((t) => t.kind === sender.track?.kind);
      if (track) await sender.replaceTrack(track);
    }
  }
  previous?.getTracks().forEach((t) => t.stop());
  await fillDevices();
  const settings = stream.getVideoTracks()[0]?.getSettings() || {};
  say(`Camera ready${settings.width ? ` (${settings.width}×${settings.height})` : ""}. Go Live sends it to your viewers.`);
  cam.root.querySelector(".camera-controls").hidden = false;
  cam.onChange();
  return true;
}

function applyMutes() {
  cam.stream?.getVideoTracks().forEach((t) => { t.enabled = cam.videoOn; });
  cam.stream?.getAudioTracks().forEach((t) => { t.enabled = cam.audioOn; });
}

function toggle(button, which) {
  cam[which] = !cam[which];
  applyMutes();
  button.setAttribute("aria-pressed", String(!cam[which]));
  button.textContent = which === "videoOn" ? (cam.videoOn ? "🎥 Camera on" : "🚫 Camera off") : (cam.audioOn ? "🎙️ Mic on" : "🔇 Muted");
}

/** The panel inside `root`: nothing is asked of the browser until the seller clicks. */
export function setupCamera(root, { onChange } = {}) {
  cam.root = root;
  cam.onChange = onChange || (() => {});
  cam.message = h("p", { class: "small muted", id: "camera-message" }, "Go live from this browser: no software to install.");
  cam.preview = h("video", { id: "camera-preview", class: "camera-preview", muted: true, autoplay: true, playsinline: true, hidden: true });
  cam.preview.muted = true; // the seller must not hear themselves
  cam.cameraSelect = h("select", { id: "camera-select", "aria-label": "Camera" });
  cam.micSelect = h("select", { id: "mic-select", "aria-label": "Microphone" });
  const start = h("button", { type: "button", id: "camera-start" }, "📷 Use my camera");
  const videoToggle = h("button", { type: "button", id: "camera-toggle", "aria-pressed": "false" }, "🎥 Camera on");
  const audioToggle = h("button", { type: "button", id: "mic-toggle", "aria-pressed": "false" }, "🎙️ Mic on");
  const controls = h("div", { class: "camera-controls stack", hidden: true },
    h("label", {}, "Camera ", cam.cameraSelect), h("label", {}, "Microphone ", cam.micSelect),
    h("div", { class: "row" }, videoToggle, audioToggle));
  fill(root, [cam.message, start, cam.preview, controls]);
  start.addEventListener("click", async () => {
    start.disabled = true;
    if (await openDevices()) start.hidden = true;
    start.disabled = false;
  });
  cam.cameraSelect.addEventListener("change", openDevices);
  cam.micSelect.addEventListener("change", openDevices);
  videoToggle.addEventListener("click", () => toggle(videoToggle, "videoOn"));
  audioToggle.addEventListener("click", () => toggle(audioToggle, "audioOn"));
}

export function cameraReady() {
  return Boolean(cam.stream);
}

export function publishing() {
  return Boolean(cam.pc);
}

function iceGathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { if (pc.iceGatheringState === "complete") resolve(); };
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, ICE_GATHERING_MS); // what was gathered by then is enough on most networks
  });
}

/** WHIP: the offer (with its candidates: livecart takes no trickle) in, the answer back. */
export async function publishCamera(streamKey) {
  if (!cam.stream) throw new Error("Set up the camera first.");
  if (cam.pc) return;
  const pc = new RTCPeerConnection();
  for (const track of cam.stream.getTracks()) {
    // The stream keeps the size of its first picture (HLS cannot change it on the way): the
    // browser should lower the frame rate under load, not start small and grow.
    const init = { direction: "sendonly", streams: [cam.stream] };
    if (track.kind === "video") init.sendEncodings = [{ maxBitrate: 2_500_000 }];
    const transceiver = pc.addTransceiver(track, init);
    cam.videoSender = track.kind === "video" ? transceiver.sender : cam.videoSender;
  }
  await pc.setLocalDescription(await pc.createOffer());
  await iceGathered(pc);
  const response = await fetch("/whip", {
    method: "POST",
    headers: { "Content-Type": "application/sdp", Authorization: `Bearer ${streamKey}` },
    body: pc.localDescription.sdp,
  });
  const text = await response.text();
  if (response.status !== 201) {
    pc.close();
    throw new Error(text.trim() || `The video server answered ${response.status}.`);
  }
  cam.location = response.headers.get("Location");
  await pc.setRemoteDescription({ type: "answer", sdp: text });
  const parameters = cam.videoSender.getParameters();
  parameters.degradationPreference = "maintain-resolution";
  await cam.videoSender.setParameters(parameters).catch(() => {}); // a browser without it keeps its default
  cam.pc = pc;
  pc.addEventListener("connectionstatechange", () => {
    if (["failed", "closed"].includes(pc.connectionState) && cam.pc === pc) {
      cam.pc = null;
      say("The connection to the video server was lost. Send the camera again when you are ready.", "error");
      cam.onChange();
    }
  });
  say("Your camera is being broadcast.", "success");
  cam.onChange();
}

export async function stopPublishing() {
  const pc = cam.pc;
  const location = cam.location;
  cam.pc = null;
  cam.location = null;
  if (location) await fetch(location, { method: "DELETE" }).catch(() => {});
  pc?.close();
  if (pc) say("The camera is no longer broadcast.");
  cam.onChange();
}

// ---------------------------------------------------------------- is media arriving?

let statusTimer = null;

export function renderMediaStatus(broadcasting, media) {
  const line = $("#media-status");
  if (!line) return;
  line.className = `small media-status ${broadcasting ? "on" : "off"}`;
  if (!broadcasting) fill(line, "⚪ No video arriving");
  else if (!media) fill(line, "🟢 Video arriving");
  else fill(line, `🟢 Video arriving: ${media.width}×${media.height}, ${media.bitrateKbps} kbit/s`);
}

/** Keeps the line right: streamUpdated says when media start and stop; the figures are polled. */
export function watchMediaStatus(streamId, broadcasting) {
  clearTimeout(statusTimer);
  renderMediaStatus(broadcasting, null);
  if (!broadcasting) return;
  const poll = async () => {
    try {
      const data = await gql(MEDIA_STATUS, { id: streamId });
      renderMediaStatus(data.stream.broadcasting, data.stream.media);
      if (!data.stream.broadcasting) return;
    } catch (err) {
      // The next poll tries again.
    }
    statusTimer = setTimeout(poll, STATUS_POLL_MS);
  };
  poll();
}

export function showCameraError(err) {
  notify(err.message, "error");
  if (cam.message) say(err.message, "error");
}
