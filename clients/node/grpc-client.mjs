// @grpc/grpc-js with @grpc/proto-loader, loading the contract from proto/ as a Node user would,
// calling every UserProfiles method and decoding the google.rpc error details from the trailer.
//
// usage: GRPC_ADDR=127.0.0.1:50051 ELASTIC_PASSWORD=... node grpc-client.mjs
import assert from 'node:assert/strict';
import { check, passedCount } from './checks.mjs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';

const address = process.env.GRPC_ADDR;
const password = process.env.ELASTIC_PASSWORD;
assert.ok(address && password, 'GRPC_ADDR and ELASTIC_PASSWORD must be set');

const protoDir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'proto');
const definition = protoLoader.loadSync(
  ['userprofiles/v1/user_profiles.proto', 'userprofiles/v1/security.proto'],
  { includeDirs: [protoDir], keepCase: true, longs: String, enums: String, defaults: true, oneofs: true },
);
const v1 = grpc.loadPackageDefinition(definition).userprofiles.v1;
const credentials = grpc.credentials.createInsecure();
const profiles = new v1.UserProfiles(address, credentials);
const users = new v1.Users(address, credentials);

// google.rpc.Status and the detail messages the service sends, to read `grpc-status-details-bin`.
const rpc = protobuf.parse(`
  syntax = "proto3";
  package google.rpc;
  message Any { string type_url = 1; bytes value = 2; }
  message Status { int32 code = 1; string message = 2; repeated Any details = 3; }
  message ErrorInfo { string reason = 1; string domain = 2; map<string, string> metadata = 3; }
  message BadRequest {
    message FieldViolation { string field = 1; string description = 2; }
    repeated FieldViolation field_violations = 1;
  }
`, { keepCase: true }).root;
const Status = rpc.lookupType('google.rpc.Status');
const detailTypes = {
  'type.googleapis.com/google.rpc.ErrorInfo': rpc.lookupType('google.rpc.ErrorInfo'),
  'type.googleapis.com/google.rpc.BadRequest': rpc.lookupType('google.rpc.BadRequest'),
};

function decodeDetails(error) {
  const [raw] = error.metadata.get('grpc-status-details-bin');
  assert.ok(raw, `no grpc-status-details-bin on ${error.code} ${error.details}`);
  const status = Status.decode(raw);
  assert.equal(status.code, error.code);
  const details = {};
  for (const any of status.details) {
    const type = detailTypes[any.type_url];
    if (type) details[any.type_url.split('.').pop()] = type.toObject(type.decode(any.value));
  }
  return details;
}

function metadata(username, userPassword) {
  const m = new grpc.Metadata();
  m.set('authorization', `Basic ${Buffer.from(`${username}:${userPassword}`).toString('base64')}`);
  return m;
}
const asElastic = () => metadata('elastic', password);

function call(client, method, request, meta = asElastic()) {
  return new Promise((resolve, reject) => {
    client[method](request, meta, (error, response) => (error ? reject(error) : resolve(response)));
  });
}

async function refused(promise) {
  try {
    await promise;
  } catch (error) {
    assert.ok(typeof error.code === 'number', `expected a gRPC error, got ${error}`);
    return error;
  }
  assert.fail('the call succeeded');
}

const str = (value) => ({ stringValue: value });

const userPassword = 'l0ng-r4nd0m-p@ssw0rd';
await check('PutUser', async () => {
  const put = await call(users, 'PutUser', {
    username: 'grpcuser',
    password: userPassword,
    roles: ['viewer'],
    full_name: 'Grace Hopper',
    email: 'grace@example.com',
  });
  assert.equal(put.created, true);
});

let uid;
await check('Activate', async () => {
  const profile = await call(profiles, 'Activate', { grant_type: 'password', username: 'grpcuser', password: userPassword });
  assert.match(profile.uid, /^u_/);
  assert.equal(profile.enabled, true);
  assert.equal(profile.user.username, 'grpcuser');
  assert.equal(profile.user.full_name, 'Grace Hopper');
  uid = profile.uid;
});

await check('UpdateProfileData and GetProfiles', async () => {
  const ack = await call(profiles, 'UpdateProfileData', {
    uid,
    labels: { fields: { team: str('compilers') } },
    data: { fields: { app1: { structValue: { fields: { theme: str('dark'), size: { numberValue: 3 } } } } } },
  });
  assert.equal(ack.acknowledged, true);
  const got = await call(profiles, 'GetProfiles', { uids: [uid, 'u_missing_0'], data: ['app1'] });
  assert.equal(got.profiles.length, 1);
  const [profile] = got.profiles;
  assert.deepEqual(profile.labels.fields.team, { stringValue: 'compilers', kind: 'stringValue' });
  assert.equal(profile.data.fields.app1.structValue.fields.theme.stringValue, 'dark');
  assert.equal(profile.data.fields.app1.structValue.fields.size.numberValue, 3);
  assert.equal(got.errors.count, 1);
  assert.equal(got.errors.details.u_missing_0.type, 'resource_not_found_exception');
});

await check('SuggestProfiles', async () => {
  const found = await call(profiles, 'SuggestProfiles', { name: 'grace', size: 5 });
  assert.equal(found.profiles.length, 1);
  assert.equal(found.profiles[0].uid, uid);
  assert.equal(found.profiles[0].user.full_name, 'Grace Hopper');
});

await check('DisableProfile and EnableProfile', async () => {
  assert.equal((await call(profiles, 'DisableProfile', { uid })).acknowledged, true);
  const disabled = await call(profiles, 'GetProfiles', { uids: [uid] });
  assert.equal(disabled.profiles[0].enabled, false);
  assert.equal((await call(profiles, 'EnableProfile', { uid })).acknowledged, true);
});

await check('a Value with no kind is INVALID_ARGUMENT naming its path, and nothing is stored', async () => {
  const before = await call(profiles, 'GetProfiles', { uids: [uid], data: ['app1'] });
  const error = await refused(
    call(profiles, 'UpdateProfileData', { uid, data: { fields: { app1: { structValue: { fields: { theme: {} } } } } } }),
  );
  assert.equal(error.code, grpc.status.INVALID_ARGUMENT);
  const details = decodeDetails(error);
  assert.equal(details.ErrorInfo.reason, 'action_request_validation_exception');
  assert.ok(
    details.BadRequest.field_violations.some((v) => v.field === 'data' && v.description.includes('[data.app1.theme]')),
    JSON.stringify(details.BadRequest),
  );
  const after = await call(profiles, 'GetProfiles', { uids: [uid], data: ['app1'] });
  assert.deepEqual(after.profiles[0].data, before.profiles[0].data);
  assert.deepEqual(after.profiles[0]._doc, before.profiles[0]._doc);
});

await check('errors carry google.rpc details', async () => {
  const unauthenticated = await refused(call(profiles, 'GetProfiles', { uids: [uid] }, metadata('grpcuser', 'wrong-password')));
  assert.equal(unauthenticated.code, grpc.status.UNAUTHENTICATED);
  assert.equal(decodeDetails(unauthenticated).ErrorInfo.reason, 'security_exception');

  const forbidden = await refused(call(profiles, 'GetProfiles', { uids: [uid] }, metadata('grpcuser', userPassword)));
  assert.equal(forbidden.code, grpc.status.PERMISSION_DENIED);

  const invalid = await refused(call(profiles, 'Activate', { grant_type: 'password', username: 'grpcuser' }));
  assert.equal(invalid.code, grpc.status.INVALID_ARGUMENT);
  const details = decodeDetails(invalid);
  assert.equal(details.ErrorInfo.reason, 'action_request_validation_exception');
  assert.ok(details.BadRequest.field_violations.some((v) => v.field === 'password'), JSON.stringify(details.BadRequest));

  const conflict = await refused(call(profiles, 'UpdateProfileData', { uid, labels: { fields: { stale: str('write') } }, if_seq_no: '0', if_primary_term: '1' }));
  assert.equal(conflict.code, grpc.status.ABORTED);
  assert.equal(decodeDetails(conflict).ErrorInfo.reason, 'version_conflict_engine_exception');
});

profiles.close();
users.close();
console.log(`grpc-client: ${passedCount()} checks passed`);
