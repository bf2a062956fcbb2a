// Where something is in a source file: travels from the lexer to every error message and progress event.
// A leaf module (it imports nothing), so errors.ts and progress/ can use it without depending on the frontend.
/** 1-based line, 1-based column. */
export interface Position {
  line: number;
  column: number;
}

export interface SourceRange {
  file: string;
  start: Position;
  end: Position;
}
