import { BASES, matrixFor } from "../../test/helpers/dtype-matrix.js";

// The dtype matrix (test/helpers/dtype-matrix.ts), one third of its bases per file so that
// the three run side by side.
matrixFor(BASES.filter((_, i) => i % 3 === 1));
