"""Headless CMS webhooks: verify the request, map the entry, write the release.

cms/         one module per CMS (verification, mapping, image rules), found by
             the registry in cms/__init__.py: adding a CMS is one new file
base.py      the interface a CMS module implements
verify.py    signature primitives shared by the CMS modules
payload.py   the verified body as JSON (unreadable or too deeply nested: 422)
mapping.py   field maps and CMS entry -> release document, shared
richtext.py  Contentful Rich Text, Sanity Portable Text, Strapi blocks -> HTML
order.py     order and replay of requests per entry (409)
service.py   HookService: the whole request -> (status, JSON body), entry maps
"""

from .service import HookService

__all__ = ["HookService"]
