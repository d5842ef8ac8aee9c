// The 404 page: the header's account, like every page (the rest is static).

import { currentUser, renderAccount } from "/static/ui.js";

currentUser().then(renderAccount);
