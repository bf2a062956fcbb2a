// The runtimes' "cannot start the process" errors become docker's 126/127; anything else keeps its status.
import { describe, expect, it } from "vitest";
import { execFailureStatus } from "../../src/executor/runtime-cli.js";

describe("execFailureStatus", () => {
  it("maps crun's and runc's exec errors", () => {
    expect(execFailureStatus(1, "executable file `nope` not found in $PATH: No such file or directory\n")).toBe(127);
    expect(execFailureStatus(1, "open executable: Permission denied\n")).toBe(126);
    expect(
      execFailureStatus(1, 'level=error msg="runc run failed: unable to start container process: exec: \\"nope\\": executable file not found in $PATH"\n'),
    ).toBe(127);
    expect(execFailureStatus(1, 'msg="runc run failed: unable to start container process: exec: \\"/etc/passwd\\": permission denied"')).toBe(126);
    expect(execFailureStatus(1, 'msg="runc run failed: unable to start container process: exec: \\"/x\\": stat /x: no such file or directory"')).toBe(127);
  });
  it("leaves other exits alone", () => {
    expect(execFailureStatus(1, "some output\nfailed: permission denied\n")).toBe(1);
    expect(execFailureStatus(2, "executable file `nope` not found in $PATH")).toBe(2);
    expect(execFailureStatus(0, "")).toBe(0);
  });
});
