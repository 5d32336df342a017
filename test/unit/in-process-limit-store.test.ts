import { createInProcessLimitStore } from "../../src/domain/limits/in-process-limit-store.js";
import { describeLimitStoreContract } from "../integration/limit-store.contract.js";

describeLimitStoreContract("in-process", async () => ({ store: createInProcessLimitStore(), close: async () => {} }));
