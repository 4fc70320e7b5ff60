"""Headless CMS webhooks: verify the request, map the entry, write the release.

verify.py    one pure function per signature scheme
richtext.py  Contentful Rich Text, Sanity Portable Text, Strapi blocks -> HTML
mapping.py   CMS payload -> release document + publish/unpublish, per field map
service.py   HookService: the whole request -> (status, JSON body)
"""

from .service import HookService

__all__ = ["HookService"]
