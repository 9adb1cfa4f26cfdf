// The official Elasticsearch JavaScript client, unmodified and with its product check on,
// driving the gateway as a Node user would: every profile API, users, tokens and errors.
//
// usage: ES_URL=http://127.0.0.1:9200 ELASTIC_PASSWORD=... node es-client.mjs
import assert from 'node:assert/strict';
import { check, passedCount } from './checks.mjs';
import { Client, errors } from '@elastic/elasticsearch';

const node = process.env.ES_URL;
const password = process.env.ELASTIC_PASSWORD;
assert.ok(node && password, 'ES_URL and ELASTIC_PASSWORD must be set');

async function refused(promise) {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof errors.ResponseError, `expected a ResponseError, got ${error}`);
    return error;
  }
  assert.fail('the call succeeded');
}

const admin = new Client({ node, auth: { username: 'elastic', password } });

await check('ping and info (product check)', async () => {
  assert.equal(await admin.ping(), true);
  const info = await admin.info();
  assert.equal(info.tagline, 'You Know, for Search');
});

await check('authenticate', async () => {
  const me = await admin.security.authenticate();
  assert.equal(me.username, 'elastic');
  assert.ok(me.roles.includes('superuser'));
});

const userPassword = 'l0ng-r4nd0m-p@ssw0rd';
await check('put, get, change password, disable and enable a user', async () => {
  const created = await admin.security.putUser({
    username: 'jacknich',
    password: userPassword,
    roles: ['admin', 'other_role1'],
    full_name: 'Jack Nicholson',
    email: 'jacknich@example.com',
    metadata: { intelligence: 7 },
  });
  assert.deepEqual(created, { created: true });
  await admin.security.putUser({ username: 'kimchy', password: userPassword, roles: ['viewer'], full_name: 'Shay Banon' });
  const users = await admin.security.getUser({ username: ['jacknich', 'kimchy'] });
  assert.equal(users.jacknich.full_name, 'Jack Nicholson');
  assert.deepEqual(users.jacknich.metadata, { intelligence: 7 });
  assert.deepEqual(users.kimchy.roles, ['viewer']);
  await admin.security.changePassword({ username: 'kimchy', password: 'an0ther-passw0rd' });
  await admin.security.disableUser({ username: 'kimchy' });
  const disabled = await admin.security.getUser({ username: 'kimchy' });
  assert.equal(disabled.kimchy.enabled, false);
  await admin.security.enableUser({ username: 'kimchy' });
});

await check('roles', async () => {
  const created = await admin.security.putRole({ name: 'profile_reader', cluster: ['read_security'] });
  assert.deepEqual(created, { role: { created: true } });
  const roles = await admin.security.getRole({ name: 'profile_reader' });
  assert.deepEqual(roles.profile_reader.cluster, ['read_security']);
});

let uid;
await check('activate a profile with a password grant', async () => {
  const profile = await admin.security.activateUserProfile({
    grant_type: 'password',
    username: 'jacknich',
    password: userPassword,
  });
  assert.match(profile.uid, /^u_/);
  assert.equal(profile.enabled, true);
  assert.equal(profile.user.username, 'jacknich');
  assert.equal(profile.user.full_name, 'Jack Nicholson');
  assert.deepEqual(profile.labels, {});
  assert.deepEqual(profile._doc, { _primary_term: 1, _seq_no: 0 });
  uid = profile.uid;
});

await check('update data and read it back filtered', async () => {
  const updated = await admin.security.updateUserProfileData({
    uid,
    labels: { direction: 'north' },
    data: { app1: { theme: 'default' }, app2: { language: 'en' } },
  });
  assert.deepEqual(updated, { acknowledged: true });
  const got = await admin.security.getUserProfile({ uid, data: 'app1' });
  assert.equal(got.profiles.length, 1);
  assert.deepEqual(got.profiles[0].labels, { direction: 'north' });
  assert.deepEqual(got.profiles[0].data, { app1: { theme: 'default' } });
  const all = await admin.security.getUserProfile({ uid: [uid, 'u_missing_0'], data: '*' });
  assert.deepEqual(all.profiles[0].data, { app1: { theme: 'default' }, app2: { language: 'en' } });
  assert.equal(all.errors.count, 1);
  assert.equal(all.errors.details.u_missing_0.type, 'resource_not_found_exception');
});

await check('optimistic concurrency on update data', async () => {
  const before = await admin.security.getUserProfile({ uid });
  const { _seq_no, _primary_term } = before.profiles[0]._doc;
  await admin.security.updateUserProfileData({ uid, labels: { seen: 1 }, if_seq_no: _seq_no, if_primary_term: _primary_term });
  const conflict = await refused(
    admin.security.updateUserProfileData({ uid, labels: { seen: 2 }, if_seq_no: _seq_no, if_primary_term: _primary_term }),
  );
  assert.equal(conflict.statusCode, 409);
  assert.equal(conflict.body.error.type, 'version_conflict_engine_exception');
});

await check('suggest', async () => {
  const found = await admin.security.suggestUserProfiles({ name: 'jack', size: 5, data: 'app2' });
  assert.equal(found.total.value, 1);
  assert.equal(found.profiles[0].uid, uid);
  assert.deepEqual(found.profiles[0].data, { app2: { language: 'en' } });
  const hinted = await admin.security.suggestUserProfiles({ hint: { uids: [uid] } });
  assert.equal(hinted.profiles[0].uid, uid);
});

await check('disable and enable the profile', async () => {
  assert.deepEqual(await admin.security.disableUserProfile({ uid }), { acknowledged: true });
  const disabled = await admin.security.getUserProfile({ uid });
  assert.equal(disabled.profiles[0].enabled, false);
  assert.deepEqual(await admin.security.enableUserProfile({ uid }), { acknowledged: true });
});

await check('tokens: create, authenticate with one, activate with one, invalidate', async () => {
  const token = await admin.security.getToken({ grant_type: 'password', username: 'jacknich', password: userPassword });
  assert.equal(token.type, 'Bearer');
  const asJack = new Client({ node, auth: { bearer: token.access_token } });
  const me = await asJack.security.authenticate();
  assert.equal(me.username, 'jacknich');
  assert.equal(me.authentication_type, 'token');
  const profile = await admin.security.activateUserProfile({ grant_type: 'access_token', access_token: token.access_token });
  assert.equal(profile.uid, uid);
  const invalidated = await admin.security.invalidateToken({ token: token.access_token });
  assert.equal(invalidated.invalidated_tokens, 1);
  const expired = await refused(asJack.security.authenticate());
  assert.equal(expired.statusCode, 401);
  await asJack.close();
});

await check('errors arrive as Elasticsearch error envelopes', async () => {
  const wrong = new Client({ node, auth: { username: 'jacknich', password: 'not-the-password' } });
  const unauthenticated = await refused(wrong.security.authenticate());
  assert.equal(unauthenticated.statusCode, 401);
  assert.equal(unauthenticated.body.error.type, 'security_exception');
  await wrong.close();
  const invalid = await refused(admin.security.activateUserProfile({ grant_type: 'password', username: 'jacknich' }));
  assert.equal(invalid.statusCode, 400);
  assert.equal(invalid.body.error.type, 'action_request_validation_exception');
  const missing = await refused(admin.security.deleteUser({ username: 'nobody' }));
  assert.equal(missing.statusCode, 404);
  assert.deepEqual(missing.body, { found: false });
});

await check('delete the role and users', async () => {
  assert.deepEqual(await admin.security.deleteRole({ name: 'profile_reader' }), { found: true });
  assert.deepEqual(await admin.security.deleteUser({ username: 'kimchy' }), { found: true });
});

await admin.close();
console.log(`es-client: ${passedCount()} checks passed`);
