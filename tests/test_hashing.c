/* test_hashing.c — identity normalization edge cases, HMAC known answers, key references and versions (RULES S7).
 *
 * The known answers were computed when the test was written, outside dashi, with
 *   printf '%s' 'PHONE:+8613800000001' | openssl dgst -sha256 -hmac 'dashi-development-key-NOT-SECRET-2022'
 * (one line per value below), so a change of the normalization, the message layout
 * "KIND:normalized" or the development key shows up here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "core/hashing.h"

#define DEV_KEY "dashi-development-key-NOT-SECRET-2022"

static char norm_buf[256];

/* Normalized value, or "ERR" when normalization refuses it. */
static const char *norm(int kind, const char *value) {
    char err[128];
    if (dashi_identity_normalize(kind, value, norm_buf, sizeof norm_buf, err, sizeof err) != DASHI_OK)
        return "ERR";
    return norm_buf;
}

/* ---- phone ---- */

Test(phone, chinese_mobile_forms_agree) {
    cr_assert_str_eq(norm(DASHI_ID_PHONE, "13800000001"), "+8613800000001");
    cr_assert_str_eq(norm(DASHI_ID_PHONE, "+8613800000001"), "+8613800000001");
    cr_assert_str_eq(norm(DASHI_ID_PHONE, "+86 138 0000 0001"), "+8613800000001");
    cr_assert_str_eq(norm(DASHI_ID_PHONE, "008613800000001"), "+8613800000001");
    cr_assert_str_eq(norm(DASHI_ID_PHONE, "0086 138-0000-0001"), "+8613800000001");
    cr_assert_str_eq(norm(DASHI_ID_PHONE, "8613800000001"), "+8613800000001");
    cr_assert_str_eq(norm(DASHI_ID_PHONE, "  138 0000 0001\t"), "+8613800000001");
    cr_assert_str_eq(norm(DASHI_ID_PHONE, "(138) 0000.0001"), "+8613800000001");
}

Test(phone, landline_trunk_zero) {
    cr_assert_str_eq(norm(DASHI_ID_PHONE, "010-12345678"), "+861012345678");
    cr_assert_str_eq(norm(DASHI_ID_PHONE, "+86 010 1234 5678"), "+861012345678");
}

Test(phone, other_country_codes_kept) {
    cr_assert_str_eq(norm(DASHI_ID_PHONE, "+1 (415) 555-2671"), "+14155552671");
    cr_assert_str_eq(norm(DASHI_ID_PHONE, "0044 20 7946 0958"), "+442079460958");
    cr_assert_str_eq(norm(DASHI_ID_PHONE, "+852 9123 4567"), "+85291234567");
}

Test(phone, full_width_digits_are_folded) {
    /* "１３８００００００01" typed with a Chinese IME, and a full-width plus sign */
    cr_assert_str_eq(norm(DASHI_ID_PHONE, "\xef\xbc\x91\xef\xbc\x93\xef\xbc\x98\xef\xbc\x90\xef\xbc\x90\xef\xbc\x90"
                                          "\xef\xbc\x90\xef\xbc\x90\xef\xbc\x90" "01"),
                     "+8613800000001");
    cr_assert_str_eq(norm(DASHI_ID_PHONE, "\xef\xbc\x8b" "86\xe3\x80\x80" "13800000001"), "+8613800000001");
}

Test(phone, refused) {
    cr_assert_str_eq(norm(DASHI_ID_PHONE, ""), "ERR");
    cr_assert_str_eq(norm(DASHI_ID_PHONE, "   "), "ERR");
    cr_assert_str_eq(norm(DASHI_ID_PHONE, "\xe3\x80\x80"), "ERR"); /* ideographic space only */
    cr_assert_str_eq(norm(DASHI_ID_PHONE, "+"), "ERR");
    cr_assert_str_eq(norm(DASHI_ID_PHONE, "1380000000x"), "ERR");
    cr_assert_str_eq(norm(DASHI_ID_PHONE, "138+00000001"), "ERR");
    cr_assert_str_eq(norm(DASHI_ID_PHONE, "+1234567890123456"), "ERR"); /* 16 digits > E.164 */
    cr_assert_str_eq(norm(DASHI_ID_PHONE, "12"), "ERR");
    cr_assert_str_eq(norm(DASHI_ID_PHONE, "\xd9\xa1\xd9\xa2\xd9\xa3"), "ERR"); /* Arabic-Indic digits: not folded */
}

/* ---- email ---- */

Test(email, lower_cased_and_trimmed) {
    cr_assert_str_eq(norm(DASHI_ID_EMAIL, "  Alice.Smith@Example.COM "), "alice.smith@example.com");
    cr_assert_str_eq(norm(DASHI_ID_EMAIL, "alice+shop@example.com"), "alice+shop@example.com");
    cr_assert_str_eq(norm(DASHI_ID_EMAIL, "bob@example.com."), "bob@example.com");
}

Test(email, gmail_dots_and_tags_removed) {
    cr_assert_str_eq(norm(DASHI_ID_EMAIL, "John.Smith+promo@Gmail.com"), "johnsmith@gmail.com");
    cr_assert_str_eq(norm(DASHI_ID_EMAIL, "j.o.h.n.smith@googlemail.com"), "johnsmith@gmail.com");
    cr_assert_str_eq(norm(DASHI_ID_EMAIL, "johnsmith+a+b@gmail.com"), "johnsmith@gmail.com");
    /* only gmail: other providers keep dots and tags */
    cr_assert_str_eq(norm(DASHI_ID_EMAIL, "john.smith+x@qq.com"), "john.smith+x@qq.com");
    cr_assert_str_eq(norm(DASHI_ID_EMAIL, "john.smith@gmail.com.cn"), "john.smith@gmail.com.cn");
}

Test(email, full_width_folded) {
    cr_assert_str_eq(norm(DASHI_ID_EMAIL, "ALICE\xef\xbc\xa0" "example.com"), "alice@example.com");
}

Test(email, refused) {
    cr_assert_str_eq(norm(DASHI_ID_EMAIL, ""), "ERR");
    cr_assert_str_eq(norm(DASHI_ID_EMAIL, " \t "), "ERR");
    cr_assert_str_eq(norm(DASHI_ID_EMAIL, "no-at-sign"), "ERR");
    cr_assert_str_eq(norm(DASHI_ID_EMAIL, "@example.com"), "ERR");
    cr_assert_str_eq(norm(DASHI_ID_EMAIL, "alice@"), "ERR");
    cr_assert_str_eq(norm(DASHI_ID_EMAIL, "alice@."), "ERR");
    cr_assert_str_eq(norm(DASHI_ID_EMAIL, "al ice@example.com"), "ERR");
    cr_assert_str_eq(norm(DASHI_ID_EMAIL, "+tag@gmail.com"), "ERR");
}

/* ---- ID document and device ---- */

Test(id_doc, upper_cased_without_spaces) {
    cr_assert_str_eq(norm(DASHI_ID_ID_DOC, "110105 19491231 002x"), "11010519491231002X");
    cr_assert_str_eq(norm(DASHI_ID_ID_DOC, "\t11010519491231002X\n"), "11010519491231002X");
    cr_assert_str_eq(norm(DASHI_ID_ID_DOC, "e12345678"), "E12345678");
    cr_assert_str_eq(norm(DASHI_ID_ID_DOC, "\xef\xbc\x91\xef\xbc\x91\xe3\x80\x80" "0105x"), "110105X");
    cr_assert_str_eq(norm(DASHI_ID_ID_DOC, "   "), "ERR");
}

Test(device, trimmed_case_kept) {
    cr_assert_str_eq(norm(DASHI_ID_DEVICE, "  abc-DEF-123 "), "abc-DEF-123");
    cr_assert_str_eq(norm(DASHI_ID_DEVICE, ""), "ERR");
}

Test(normalize, unknown_kind_and_small_buffer) {
    char out[8], err[128];
    cr_assert_eq(dashi_identity_normalize(17, "x", out, sizeof out, err, sizeof err), DASHI_ERR_INVALID);
    cr_assert_eq(dashi_identity_normalize(DASHI_ID_EMAIL, "a.very.long.name@example.com", out, sizeof out, err,
                                          sizeof err),
                 DASHI_ERR_INVALID);
}

Test(normalize, error_message_never_quotes_the_value) {
    char out[64], err[256];
    dashi_identity_normalize(DASHI_ID_PHONE, "1390000SECRET", out, sizeof out, err, sizeof err);
    cr_assert_null(strstr(err, "SECRET"));
    cr_assert_null(strstr(err, "1390000"));
    dashi_identity_normalize(DASHI_ID_EMAIL, "secret person@example.com", out, sizeof out, err, sizeof err);
    cr_assert_null(strstr(err, "secret"));
}

/* ---- HMAC ---- */

static char hash_buf[DASHI_HASH_STRLEN];

static const char *hash_of(const dashi_keyring *kr, int kind, const char *value) {
    char err[128];
    if (dashi_identity_hash(kr, kind, value, false, hash_buf, sizeof hash_buf, err, sizeof err) != DASHI_OK)
        return "ERR";
    return hash_buf;
}

Test(hmac, known_answers_dev_key) {
    char err[128];
    dashi_keyring *kr = dashi_keyring_load("dev", err, sizeof err);
    cr_assert_not_null(kr, "%s", err);
    /* printf '%s' 'PHONE:+8613800000001' | openssl dgst -sha256 -hmac 'dashi-development-key-NOT-SECRET-2022' */
    cr_assert_str_eq(hash_of(kr, DASHI_ID_PHONE, "138 0000 0001"),
                     "v1:e4e8388cfc39b1abfd1de9c7211e384638359f85f71ba4d06b9ff5f381b61c39");
    /* EMAIL:johnsmith@gmail.com */
    cr_assert_str_eq(hash_of(kr, DASHI_ID_EMAIL, "John.Smith+x@GoogleMail.com"),
                     "v1:1cf98b3263dde65731356e26e326a218b08ac604557eef3ed1c3d1e2604246ed");
    /* ID_DOC:11010519491231002X */
    cr_assert_str_eq(hash_of(kr, DASHI_ID_ID_DOC, "110105 19491231 002x"),
                     "v1:0f4b92efff0028197786a82fe5b78996bbbe1f54267330ac0678dd571ace3651");
    /* DEVICE:abc-DEF-123 */
    cr_assert_str_eq(hash_of(kr, DASHI_ID_DEVICE, " abc-DEF-123"),
                     "v1:364d6a603ce2c68d44f1fbc53560591ce9dbcabaa50bab4341c0e4b6b261a911");
    /* NULL reference is the development key too */
    dashi_keyring *kr2 = dashi_keyring_load(NULL, err, sizeof err);
    cr_assert_str_eq(hash_of(kr2, DASHI_ID_PHONE, "+8613800000001"),
                     "v1:e4e8388cfc39b1abfd1de9c7211e384638359f85f71ba4d06b9ff5f381b61c39");
    dashi_keyring_destroy(kr);
    dashi_keyring_destroy(kr2);
}

Test(hmac, kind_is_part_of_the_message) {
    char err[128], a[DASHI_HASH_STRLEN];
    dashi_keyring *kr = dashi_keyring_load("dev", err, sizeof err);
    strcpy(a, hash_of(kr, DASHI_ID_DEVICE, "ABC123"));
    cr_assert_str_neq(a, hash_of(kr, DASHI_ID_ID_DOC, "ABC123"));
    dashi_keyring_destroy(kr);
}

Test(hmac, invalid_value_and_small_buffer) {
    char err[128], out[16];
    dashi_keyring *kr = dashi_keyring_load("dev", err, sizeof err);
    cr_assert_str_eq(hash_of(kr, DASHI_ID_PHONE, "  "), "ERR");
    cr_assert_eq(dashi_identity_hash(kr, DASHI_ID_PHONE, "13800000001", false, out, sizeof out, err, sizeof err),
                 DASHI_ERR_INVALID);
    cr_assert_eq(dashi_identity_hash(NULL, DASHI_ID_PHONE, "13800000001", false, hash_buf, sizeof hash_buf, err,
                                     sizeof err),
                 DASHI_ERR_INVALID);
    dashi_keyring_destroy(kr);
}

Test(hmac, hashed_values_pass_through_trimmed) {
    char err[128], out[DASHI_HASH_STRLEN];
    cr_assert_eq(dashi_identity_hash(NULL, DASHI_ID_PHONE, "  v1:abcdef  ", true, out, sizeof out, err, sizeof err),
                 DASHI_OK);
    cr_assert_str_eq(out, "v1:abcdef");
    cr_assert_eq(dashi_identity_hash(NULL, DASHI_ID_PHONE, "   ", true, out, sizeof out, err, sizeof err),
                 DASHI_ERR_INVALID);
    cr_assert_eq(dashi_identity_hash(NULL, DASHI_ID_PHONE, "0123456789abcdef", true, out, 8, err, sizeof err),
                 DASHI_ERR_INVALID);
}

/* ---- key versions ---- */

Test(keys, rotation_current_is_highest_old_versions_reachable) {
    char err[128], h[DASHI_HASH_STRLEN];
    int versions[4];
    dashi_keyring *kr = dashi_keyring_load("dev", err, sizeof err);
    const char *v2 = "another-secret-for-version-2!";
    cr_assert_eq(dashi_keyring_add(kr, 2, v2, strlen(v2), err, sizeof err), DASHI_OK);
    cr_assert_eq(dashi_keyring_versions(kr, versions, 4), 2);
    cr_assert_eq(versions[0], 2);
    cr_assert_eq(versions[1], 1);
    /* printf '%s' 'PHONE:+8613800000001' | openssl dgst -sha256 -hmac 'another-secret-for-version-2!' */
    cr_assert_str_eq(hash_of(kr, DASHI_ID_PHONE, "13800000001"),
                     "v2:f53a89276f3ddf2a32b3a4171e4ac326de5c003c8250607bd383030161b55b5c");
    cr_assert_eq(dashi_identity_hash_version(kr, 1, DASHI_ID_PHONE, "13800000001", h, sizeof h, err, sizeof err),
                 DASHI_OK);
    cr_assert_str_eq(h, "v1:e4e8388cfc39b1abfd1de9c7211e384638359f85f71ba4d06b9ff5f381b61c39");
    cr_assert_eq(dashi_identity_hash_version(kr, 3, DASHI_ID_PHONE, "13800000001", h, sizeof h, err, sizeof err),
                 DASHI_ERR_NOT_FOUND);
    /* a version given twice, version 0, an empty secret */
    cr_assert_eq(dashi_keyring_add(kr, 2, "x", 1, err, sizeof err), DASHI_ERR_INVALID);
    cr_assert_eq(dashi_keyring_add(kr, 0, "x", 1, err, sizeof err), DASHI_ERR_INVALID);
    cr_assert_eq(dashi_keyring_add(kr, 5, "", 0, err, sizeof err), DASHI_ERR_INVALID);
    dashi_keyring_destroy(kr);
}

Test(keys, older_version_added_after_stays_behind) {
    char err[128];
    int versions[4];
    dashi_keyring *kr = dashi_keyring_load("dev#3", err, sizeof err);
    cr_assert_not_null(kr, "%s", err);
    cr_assert_eq(dashi_keyring_add(kr, 2, "older-secret-0123456789", 23, err, sizeof err), DASHI_OK);
    cr_assert_eq(dashi_keyring_versions(kr, versions, 4), 2);
    cr_assert_eq(versions[0], 3);
    cr_assert_eq(versions[1], 2);
    cr_assert_eq(strncmp(hash_of(kr, DASHI_ID_PHONE, "13800000001"), "v3:", 3), 0);
    /* same key, another version label: same HMAC, other prefix */
    cr_assert_str_eq(hash_buf + 3, "e4e8388cfc39b1abfd1de9c7211e384638359f85f71ba4d06b9ff5f381b61c39");
    dashi_keyring_destroy(kr);
    cr_assert_eq(dashi_keyring_versions(NULL, versions, 4), 0);
    dashi_keyring_destroy(NULL);
}

Test(keys, env_reference) {
    char err[256];
    setenv("DASHI_TEST_HMAC", "another-secret-for-version-2!\n", 1);
    dashi_keyring *kr = dashi_keyring_load("env:DASHI_TEST_HMAC#2", err, sizeof err);
    cr_assert_not_null(kr, "%s", err);
    cr_assert_str_eq(hash_of(kr, DASHI_ID_PHONE, "13800000001"),
                     "v2:f53a89276f3ddf2a32b3a4171e4ac326de5c003c8250607bd383030161b55b5c");
    dashi_keyring_destroy(kr);
    cr_assert_null(dashi_keyring_load("env:DASHI_TEST_HMAC_UNSET_XYZ", err, sizeof err));
    setenv("DASHI_TEST_HMAC", "Zq7Xw", 1); /* too short */
    cr_assert_null(dashi_keyring_load("env:DASHI_TEST_HMAC", err, sizeof err));
    cr_assert_null(strstr(err, "Zq7Xw"), "the secret must not appear in messages: %s", err);
    cr_assert_null(dashi_keyring_load("vault:x", err, sizeof err));
    cr_assert_null(dashi_keyring_load("env:DASHI_TEST_HMAC#0", err, sizeof err));
}

Test(keys, file_reference_and_permissions) {
    char err[256], path[] = "/tmp/dashi-test-key-XXXXXX", ref[64];
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    const char *secret = "dashi-development-key-NOT-SECRET-2022\n";
    cr_assert_eq(write(fd, secret, strlen(secret)), (ssize_t)strlen(secret));
    close(fd);
    snprintf(ref, sizeof ref, "file:%s", path);

    chmod(path, 0600);
    dashi_keyring *kr = dashi_keyring_load(ref, err, sizeof err);
    cr_assert_not_null(kr, "%s", err);
    cr_assert_str_eq(hash_of(kr, DASHI_ID_PHONE, "13800000001"),
                     "v1:e4e8388cfc39b1abfd1de9c7211e384638359f85f71ba4d06b9ff5f381b61c39");
    dashi_keyring_destroy(kr);

    chmod(path, 0640);
    cr_assert_null(dashi_keyring_load(ref, err, sizeof err));
    cr_assert_not_null(strstr(err, "chmod 600"), "%s", err);
    chmod(path, 0604);
    cr_assert_null(dashi_keyring_load(ref, err, sizeof err));
    chmod(path, 0400);
    kr = dashi_keyring_load(ref, err, sizeof err);
    cr_assert_not_null(kr, "%s", err);
    dashi_keyring_destroy(kr);
    unlink(path);
    cr_assert_null(dashi_keyring_load(ref, err, sizeof err));
    cr_assert_null(dashi_keyring_load("file:/tmp", err, sizeof err));
}

Test(keys, list_reference_for_a_rotation) {
    char err[256];
    int versions[4];
    setenv("DASHI_TEST_HMAC_NEW", "another-secret-for-version-2!", 1);
    dashi_keyring *kr = dashi_keyring_load("dev#1,env:DASHI_TEST_HMAC_NEW#2", err, sizeof err);
    cr_assert_not_null(kr, "%s", err);
    cr_assert_eq(dashi_keyring_versions(kr, versions, 4), 2);
    cr_assert_eq(versions[0], 2);
    cr_assert_str_eq(hash_of(kr, DASHI_ID_PHONE, "13800000001"),
                     "v2:f53a89276f3ddf2a32b3a4171e4ac326de5c003c8250607bd383030161b55b5c");
    dashi_keyring_destroy(kr);
    /* two references of the same version, or an empty list, are refused */
    cr_assert_null(dashi_keyring_load("dev,env:DASHI_TEST_HMAC_NEW", err, sizeof err));
    cr_assert_not_null(strstr(err, "version 1 given twice"), "%s", err);
    cr_assert_null(dashi_keyring_load(",", err, sizeof err));
    cr_assert_null(dashi_keyring_load("dev#2,env:DASHI_TEST_HMAC_UNSET_XYZ#1", err, sizeof err));
}
