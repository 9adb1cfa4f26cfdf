// Named checks for the client scripts: each failure says which check failed, and the script
// ends by printing how many passed (what tests/api/clients.rs asserts).
let passed = 0;

export async function check(name, body) {
  try {
    await body();
    passed += 1;
  } catch (error) {
    console.error(`FAILED: ${name}`);
    throw error;
  }
}

export function passedCount() {
  return passed;
}
