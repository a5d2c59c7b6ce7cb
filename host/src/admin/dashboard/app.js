// The dashboard's shell: sign-in, the view switcher, and the live feed handed to the views.

import { session, setKey, whenRefused, follow } from './api.js';
import * as targets from './targets.js';
import * as requests from './requests.js';
import * as usage from './usage.js';
import * as plugins from './plugins.js';
import * as keys from './keys.js';

const VIEWS = { targets, requests, usage, plugins, keys };
const $ = (id) => document.getElementById(id);
let feed = null;
let current = null;

function setLive(text) {
  $('live').textContent = text;
  $('live').dataset.state = text === 'Live' ? 'live' : 'off';
}

function showLogin(message) {
  if (feed) feed.abort();
  feed = null;
  $('nav').hidden = true;
  $('sign-out').hidden = true;
  for (const el of document.querySelectorAll('.view')) el.hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = message || '';
  setLive('Not connected');
  $('admin-key').focus();
}

function show(name) {
  if (!VIEWS[name]) name = 'targets';
  current = name;
  for (const [view] of Object.entries(VIEWS)) {
    $(`view-${view}`).hidden = view !== name;
    const button = document.querySelector(`#nav [data-view="${view}"]`);
    if (view === name) button.setAttribute('aria-current', 'page');
    else button.removeAttribute('aria-current');
  }
  if (location.hash !== `#${name}`) history.replaceState(null, '', `#${name}`);
  VIEWS[name].show();
}

function dispatch(name, data) {
  switch (name) {
    case 'hello':
      requests.reset();
      break;
    case 'request':
      requests.add(data);
      usage.requestSeen();
      break;
    case 'reload':
      plugins.addReload(data);
      break;
    case 'targets':
      targets.update(data);
      usage.targetsSeen(data);
      break;
    case 'lagged':
      requests.refetch();
      break;
    default:
      break;
  }
}

function start() {
  $('login').hidden = true;
  $('nav').hidden = false;
  $('sign-out').hidden = false;
  setLive('Connecting…');
  feed = new AbortController();
  follow(dispatch, setLive, feed.signal);
  show(location.hash.slice(1) || 'targets');
}

async function signIn(candidate) {
  setKey(candidate);
  const answer = await session();
  if (answer.authorized) {
    start();
    return;
  }
  setKey('');
  showLogin(candidate ? 'That admin key was refused.' : '');
}

function init() {
  for (const view of Object.values(VIEWS)) view.init();
  whenRefused(() => {
    setKey('');
    showLogin('The admin key was refused; sign in again.');
  });
  $('nav').addEventListener('click', (event) => {
    const button = event.target.closest('button[data-view]');
    if (button) show(button.dataset.view);
  });
  window.addEventListener('hashchange', () => {
    const name = location.hash.slice(1);
    if (!$('nav').hidden && name && name !== current) show(name);
  });
  $('login-form').addEventListener('submit', (event) => {
    event.preventDefault();
    signIn($('admin-key').value.trim()).catch((error) => showLogin(`Cannot reach the gateway: ${error.message}`));
  });
  $('sign-out').addEventListener('click', () => {
    setKey('');
    showLogin('Signed out.');
  });
  signIn(sessionStorage.getItem('freeway-admin-key') || '')
    .catch((error) => showLogin(`Cannot reach the gateway: ${error.message}`));
}

init();
